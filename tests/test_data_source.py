"""Where a run's data came from (``dislab.data.source``, ``GroundTruthData.source()``): procedural (and which
published file a procedural rendering stands in for), or the file / folder with its size and a sha256 equal
to hashlib's; recorded on the console, in metrics.json and in every tracker's config."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import compose
from data_files import (
    MPI_SMALL,
    cars3d_folder,
    dsprites_file,
    image_folder,
    mpi3d_images,
    shapes3d_file,
    smallnorb_folder,
)
from dislab.data import source as sources

DSPRITES = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"


def _file(path) -> dict:
    p = Path(path).resolve()
    return {"kind": "file", "path": str(p), "bytes": p.stat().st_size,
            "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}


def _folder(folder, names) -> dict:
    """The folder digest computed here, independently: sha256 over 'name<TAB>bytes<TAB>sha256<LF>', sorted."""
    root = Path(folder).resolve()
    lines = "".join(f"{n}\t{(root / n).stat().st_size}\t{hashlib.sha256((root / n).read_bytes()).hexdigest()}\n"
                    for n in sorted(names))
    total = sum((root / n).stat().st_size for n in names)
    return {"kind": "folder", "path": str(root), "files": len(names), "bytes": total,
            "sha256": hashlib.sha256(lines.encode()).hexdigest()}


def _cases(tmp_path):
    """(data set, its constructor arguments, the source expected), for every data set."""
    from dislab.data.smallnorb import CHUNKS

    dsprites_file(tmp_path / "d.npz")
    shapes3d_file(tmp_path / "3dshapes.h5")
    np.savez(tmp_path / "mpi3d_toy.npz", images=mpi3d_images())
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 300, 3), np.uint8)).save(tmp_path / "scream.png")
    norb = smallnorb_folder(tmp_path / "norb", side=8)
    cars = cars3d_folder(tmp_path / "cars", side=4)
    faces = image_folder(tmp_path / "faces")
    stand_in = lambda name, file: {"kind": "procedural", "dataset": name, "stands_in_for": file}  # noqa: E731
    return [
        ("toy", {}, stand_in("toy", None)),
        ("dsprites", {}, stand_in("dsprites", DSPRITES)),
        ("color_dsprites", {}, stand_in("color_dsprites", DSPRITES)),
        ("noisy_dsprites", {}, stand_in("noisy_dsprites", DSPRITES)),
        ("scream_dsprites", {"background": tmp_path / "scream.png"},
         {**stand_in("scream_dsprites", DSPRITES), "background": _file(tmp_path / "scream.png")}),
        ("shapes3d", {}, stand_in("shapes3d", "3dshapes.h5")),
        ("dsprites", {"path": tmp_path / "d.npz"}, {"dataset": "dsprites", **_file(tmp_path / "d.npz")}),
        ("color_dsprites", {"path": tmp_path / "d.npz"}, {"dataset": "color_dsprites", **_file(tmp_path / "d.npz")}),
        ("shapes3d", {"path": tmp_path / "3dshapes.h5"}, {"dataset": "shapes3d", **_file(tmp_path / "3dshapes.h5")}),
        ("mpi3d", {"path": tmp_path / "mpi3d_toy.npz", "factor_sizes": list(MPI_SMALL)},
         {"dataset": "mpi3d", **_file(tmp_path / "mpi3d_toy.npz")}),
        ("smallnorb", {"path": norb}, {"dataset": "smallnorb", **_folder(norb, [
            f"smallnorb-{c}-{k}.mat" for c in CHUNKS for k in ("dat", "cat", "info")])}),
        ("cars3d", {"path": cars}, {"dataset": "cars3d", **_folder(cars, [f"car_{i:03d}_mesh.mat" for i in
                                                                          range(1, 184)])}),
        ("images", {"path": faces}, {"dataset": "images", **_folder(faces, [  # not notes.txt
            "sub/im0.png", "im1.png", "im2.png", "im3.jpg", "im4.png"])}),
    ]


def test_every_data_set_names_its_source_with_the_sha256_hashlib_computes(tmp_path):
    from hydra.utils import get_class, instantiate

    for name, args, expected in _cases(tmp_path):
        cfg = compose([f"dataset={name}", *(f"+dataset.{k}={v}" if k == "factor_sizes" else f"dataset.{k}={v}"
                                            for k, v in args.items())]).dataset
        data = instantiate(cfg)
        assert data.source() == expected, name
        # what a run's trackers record (from the config alone, without building the data set) is the same
        assert get_class(cfg._target_).source_of({k: cfg[k] for k in cfg}) == expected, name
        warning = sources.stand_in_warning(expected)
        assert (warning is not None) == bool(expected.get("stands_in_for")), name
        text = sources.describe(expected)
        if expected["kind"] == "procedural":
            assert text.startswith("procedural") and (expected["stands_in_for"] or "procedural") in text
        else:
            assert expected["path"] in text and f"{expected['bytes']:,} bytes" in text and expected["sha256"] in text
    assert sources.stand_in_warning({"kind": "procedural", "dataset": "shapes3d", "stands_in_for": "3dshapes.h5"}) == (
        "data: shapes3d is procedural (dislab's re-rendering), not the published 3dshapes.h5: scores are not "
        "comparable with published ones; give dataset.path=<3dshapes.h5> for the published file, or fetch it once "
        f"into {sources.data_dir()}: python -m dislab.data.download shapes3d")


def test_a_large_files_sha256_is_kept_by_path_size_and_time(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(sources, "CACHE_BYTES", 10)  # "large": 10 bytes and more
    monkeypatch.setattr(sources, "_MEMO", {})
    data = tmp_path / "data.bin"
    data.write_bytes(b"0123456789abcdef")
    first = sources.file_source(data)
    assert first == _file(data) and len(list((tmp_path / "cache" / "dislab" / "sha256").iterdir())) == 1

    def no_hashing(path):
        raise AssertionError("hashed again")

    monkeypatch.setattr(sources, "_MEMO", {})  # a later run: read back, not hashed
    monkeypatch.setattr(sources, "_hash_bytes", no_hashing)
    assert sources.file_source(data) == first
    data.write_bytes(b"0123456789ABCDEF!")  # another content (size and time): hashed anew
    with pytest.raises(AssertionError, match="hashed again"):
        sources.file_source(data)
    monkeypatch.undo()
    small = tmp_path / "small.bin"  # under CACHE_BYTES: hashed every time, nothing kept
    small.write_bytes(b"x")
    assert sources.file_source(small) == _file(small)


def _tiny(tmp_path, name, *extra):
    from dislab.train import run

    run_dir = tmp_path / name
    cfg = compose(["net=mlp", "+net.hidden=16", "steps=1", "batch_size=8", "metrics=none", "metrics_every=0",
                   "eval_untrained=false", "num_eval=16", "num_decomposition=0", "trainer=cpu",
                   "+trainer.enable_progress_bar=false", "+trainer.enable_model_summary=false", f"run_dir={run_dir}",
                   *extra])
    run(cfg)
    return cfg, run_dir, json.loads((run_dir / "metrics.json").read_text())


def test_a_run_says_where_its_data_came_from(tmp_path, caplog):
    """A procedural stand-in (dsprites) says so in one line before the summary and as 'procedural' in the data
    row, metrics.json and the trackers' config; a file (shapes3d's h5) is named with its size and sha256."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    from dislab.trackers.loggers import run_config
    from dislab.train import group_name

    caplog.set_level(logging.INFO)
    cfg, run_dir, saved = _tiny(tmp_path, "job", "dataset=dsprites", "logger=tensorboard")
    lines = [r.getMessage().removeprefix("job ") for r in caplog.records if r.name == "dislab"]  # no terminal
    first = next(i for i, m in enumerate(lines) if m.startswith("data: "))
    assert lines[first] == (f"data: dsprites is procedural (dislab's re-rendering), not the published {DSPRITES}: "
                            f"scores are not comparable with published ones; give dataset.path=<{DSPRITES}> for "
                            f"the published file, or fetch it once into {sources.data_dir()}: python -m "
                            "dislab.data.download dsprites")
    assert lines[first + 1].startswith("run ")  # the summary follows it
    assert any(m.startswith("data ") and m.endswith(f"; procedural (dislab's re-rendering of the published "
                                                    f"{DSPRITES})") for m in lines)
    expected = {"kind": "procedural", "dataset": "dsprites", "stands_in_for": DSPRITES}
    assert saved["data"] == expected and run_config(cfg, group_name(cfg))["data"] == expected
    ea = EventAccumulator(str(run_dir / "tensorboard")).Reload()  # a tracker's record of the config
    content = ea.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["data/kind"].string_value == "procedural" and hparams["data/stands_in_for"].string_value == DSPRITES

    caplog.clear()
    shapes3d_file(tmp_path / "3dshapes.h5")
    cfg, run_dir, saved = _tiny(tmp_path, "job2", "dataset=shapes3d", f"dataset.path={tmp_path / '3dshapes.h5'}",
                                "logger=none")
    expected = {"dataset": "shapes3d", **_file(tmp_path / "3dshapes.h5")}
    assert saved["data"] == expected and run_config(cfg, group_name(cfg))["data"] == expected
    lines = [r.getMessage().removeprefix("job2 ") for r in caplog.records if r.name == "dislab"]
    assert not [m for m in lines if m.startswith("data: ")]  # no stand-in, no warning
    [row] = [m for m in lines if m.startswith("data ")]
    assert row.endswith(f"; file {expected['path']} ({expected['bytes']:,} bytes, sha256 {expected['sha256']})")
