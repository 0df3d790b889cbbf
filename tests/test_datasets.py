"""The ground-truth data sets of conf/dataset/: generators (factor grid, determinism, what each
factor changes) and loaders (each against a small file in the official format, from data_files.py,
and every kind of bad file), the preview, and a few training steps on each."""

from __future__ import annotations

import re
import zipfile

import h5py
import numpy as np
import pytest
from PIL import Image

from conftest import CONF, compose
from data_files import (
    MPI_SMALL,
    cars3d_folder,
    image_folder,
    mpi3d_images,
    norb_write,
    real_file_overrides,
    shapes3d_file,
    smallnorb_folder,
)

RNG = np.random.default_rng


def check_protocol(data, n=12, seed=0):
    """The contract every data set keeps: shapes, dtype, range, determinism, index <-> factors."""
    f = data.sample_factors(n, RNG(seed))
    assert f.shape == (n, len(data.factor_sizes)) and f.dtype.kind == "i"
    assert ((f >= 0) & (f < np.asarray(data.factor_sizes))).all()
    x = data.sample_observations_from_factors(f, RNG(seed))
    assert x.dtype == np.float32 and x.shape == (n, *data.x_shape) and 0 <= x.min() and x.max() <= 1
    assert np.array_equal(x, data.sample_observations_from_factors(f, RNG(seed)))
    idx = data.factors_to_index(f)
    assert np.array_equal(data.index_to_factors(idx), f)
    return f, x


def test_every_dataset_yaml_targets_its_own_module():
    for p in (CONF / "dataset").glob("*.yaml"):
        target = compose([f"dataset={p.stem}"]).dataset._target_
        assert target.split(".")[2] == p.stem, (p, target)


# ---- shapes3d ------------------------------------------------------------------------------------
def test_shapes3d_renderer_grid_and_determinism():
    from dislab.data.shapes3d import Shapes3D

    d = Shapes3D()
    assert d.factor_names == ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
    assert d.factor_sizes == (10, 10, 10, 8, 4, 15) and len(d) == 480_000 and d.x_shape == (3, 64, 64)
    assert np.allclose(d.factor_values[3], np.linspace(0.75, 1.25, 8))
    assert np.allclose(d.factor_values[5], np.linspace(-30, 30, 15))
    assert np.array_equal(d.index_to_factors(np.arange(3)), [[0, 0, 0, 0, 0, i] for i in range(3)])
    check_protocol(d)


@pytest.mark.parametrize("part", [0, 1, 2])
def test_shapes3d_each_hue_changes_only_its_own_pixels(part):
    from dislab.data.shapes3d import _TABLES, Shapes3D

    d = Shapes3D()
    base = np.array([[3, 5, 7, 4, s, o] for s in range(4) for o in (0, 14)])
    x0 = d.sample_observations_from_factors(base)
    weights = _TABLES[(64, 2)][0][(base[:, 4] * 8 + base[:, 3]) * 15 + base[:, 5]].reshape(-1, 3, 64, 64)
    mine = weights[:, part] > 0
    for v in (0, 9):
        f = base.copy()
        f[:, part] = v
        changed = (np.abs(d.sample_observations_from_factors(f) - x0) > 1e-6).any(1)
        assert changed.any() and not (changed & ~mine).any()


def test_shapes3d_scale_grows_the_object_and_every_factor_matters():
    from dislab.data.shapes3d import _TABLES, Shapes3D

    d = Shapes3D()
    for shape in range(4):
        f = np.array([[0, 3, 6, s, shape, 7] for s in range(8)])
        d.sample_observations_from_factors(f)
        area = _TABLES[(64, 2)][0][(f[:, 4] * 8 + f[:, 3]) * 15 + f[:, 5], 2].sum(-1)
        assert (np.diff(area) > 0).all(), (shape, area)
    base = np.array([[1, 4, 7, 3, 1, 5]])
    for k, size in enumerate(d.factor_sizes):
        f = np.repeat(base, size, 0)
        f[:, k] = np.arange(size)
        x = d.sample_observations_from_factors(f).reshape(size, -1)
        assert len(np.unique(x.round(5), axis=0)) == size, d.factor_names[k]  # every value looks different


@pytest.mark.parametrize("layout", [dict(), dict(chunks=(1, 64, 64, 3), compression="gzip"),
                                    dict(chunks=(5, 64, 64, 3))])
def test_shapes3d_reads_the_official_h5_lazily_in_row_major_order(tmp_path, layout):
    from dislab.data.shapes3d import Shapes3D

    grid = shapes3d_file(tmp_path / "3dshapes.h5", **layout)
    d = Shapes3D(path=tmp_path / "3dshapes.h5")
    assert d.factor_sizes == (2, 2, 2, 2, 4, 2) and len(d) == len(grid)
    assert isinstance(d._images, np.memmap) == (not layout) and not d.paints  # the file stays on the host
    f, x = check_protocol(d, n=40)
    row = np.rint(x[:, 0, 0, 0] * 255) + 256 * np.rint(x[:, 1, 0, 0] * 255)
    assert np.array_equal(row, np.ravel_multi_index(tuple(f.T), d.factor_sizes))
    assert np.allclose(d.factor_values[3], np.linspace(0.75, 1.25, 8)[:2])


def test_shapes3d_uncompress_gives_a_memory_mapped_copy(tmp_path):
    from dislab.data.shapes3d import Shapes3D, uncompress

    shapes3d_file(tmp_path / "a.h5", chunks=(4, 64, 64, 3), compression="gzip")
    uncompress(tmp_path / "a.h5", tmp_path / "b.h5", block=7)
    a, b = Shapes3D(tmp_path / "a.h5"), Shapes3D(tmp_path / "b.h5")
    assert isinstance(b._images, np.memmap)
    f = a.sample_factors(30, RNG(0))
    assert np.array_equal(a.sample_observations_from_factors(f), b.sample_observations_from_factors(f))


def _bad_h5(tmp_path, case):
    p = tmp_path / "3dshapes.h5"
    if case == "missing":
        return tmp_path / "nope.h5", FileNotFoundError, "does not exist"
    if case == "not_hdf5":
        p.write_bytes(b"not an hdf5 file" * 100)
        return p, ValueError, "not a readable HDF5"
    if case == "truncated":
        shapes3d_file(p, image_of=lambda g: RNG(0).integers(0, 255, (len(g), 64, 64, 3), dtype=np.uint8))
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
        return p, ValueError, "3dshapes.h5"
    with h5py.File(p, "w") as f:
        grid = np.indices((2, 2, 2, 2, 4, 2)).reshape(6, -1).T.astype(np.float64)
        n = len(grid)
        if case == "no_labels":
            f["images"] = np.zeros((n, 64, 64, 3), np.uint8)
            return p, ValueError, "no data set 'labels'"
        if case == "float_images":
            f["images"], f["labels"] = np.zeros((n, 64, 64, 3), np.float32), grid
            return p, ValueError, "expected uint8 (N, 64, 64, 3)"
        if case == "small_images":
            f["images"], f["labels"] = np.zeros((n, 32, 32, 3), np.uint8), grid
            return p, ValueError, "expected uint8 (N, 64, 64, 3)"
        if case == "label_count":
            f["images"], f["labels"] = np.zeros((n, 64, 64, 3), np.uint8), grid[:-1]
            return p, ValueError, "'labels' is float64"
        if case == "shuffled":
            f["images"], f["labels"] = np.zeros((n, 64, 64, 3), np.uint8), RNG(0).permutation(grid)
            return p, ValueError, "not the row-major grid"
        if case == "incomplete_grid":
            f["images"], f["labels"] = np.zeros((n - 2, 64, 64, 3), np.uint8), grid[:-2]
            return p, ValueError, "not the row-major grid"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["missing", "not_hdf5", "truncated", "no_labels", "float_images", "small_images",
                                  "label_count", "shuffled", "incomplete_grid"])
def test_shapes3d_bad_files_get_one_clear_line(tmp_path, case):
    from dislab.data.shapes3d import Shapes3D

    path, err, words = _bad_h5(tmp_path, case)
    with pytest.raises(err, match=re.escape(words)) as e:
        Shapes3D(path=path)
    assert str(path.name) in str(e.value) and "\n" not in str(e.value)


# ---- mpi3d ---------------------------------------------------------------------------------------
def test_mpi3d_memory_maps_the_official_npz_in_row_major_order(tmp_path):
    from dislab.data.mpi3d import MPI3D

    np.savez(tmp_path / "mpi3d_toy.npz", images=mpi3d_images())
    d = MPI3D(path=tmp_path / "mpi3d_toy.npz", factor_sizes=MPI_SMALL)
    assert isinstance(d.images, np.memmap) and not d.paints  # a memory-mapped file stays on the host
    assert d.factor_names == ("object_color", "object_shape", "object_size", "camera_height", "background_color",
                              "horizontal_axis", "vertical_axis")
    f, x = check_protocol(d, n=30)
    assert np.array_equal(np.rint(x[:, 0, 0, 0] * 255) + 256 * np.rint(x[:, 1, 0, 0] * 255), d.factors_to_index(f))
    assert MPI3D.factor_sizes == (6, 6, 2, 3, 3, 40, 40) and int(np.prod(MPI3D.factor_sizes)) == 1_036_800
    # a compressed npz is read into memory when it fits the budget, a .npy is memory-mapped
    np.savez_compressed(tmp_path / "c.npz", images=mpi3d_images())
    c = MPI3D(path=tmp_path / "c.npz", factor_sizes=MPI_SMALL, variant="real")
    np.save(tmp_path / "r.npy", mpi3d_images())
    r = MPI3D(path=tmp_path / "r.npy", factor_sizes=MPI_SMALL, variant="realistic")
    assert np.array_equal(c.sample_observations_from_factors(f), x)
    assert np.array_equal(r.sample_observations_from_factors(f), x)


@pytest.mark.parametrize("case", ["missing", "not_zip", "truncated", "corrupt_member", "no_images", "float",
                                  "grid", "objects", "too_big", "variant"])
def test_mpi3d_bad_files_get_one_clear_line(tmp_path, case):
    from dislab.data.mpi3d import MPI3D

    p, kw, err, words = tmp_path / "mpi3d_toy.npz", dict(factor_sizes=MPI_SMALL), ValueError, None
    if case == "missing":
        p, err, words = tmp_path / "nope.npz", FileNotFoundError, "does not exist"
    elif case == "not_zip":
        p.write_bytes(b"x" * 1000)
        words = "not a readable .npz"
    elif case == "truncated":
        np.savez(p, images=mpi3d_images())
        p.write_bytes(p.read_bytes()[:100_000])
        words = "truncated or corrupt"
    elif case == "corrupt_member":  # the member's header claims more data than the zip holds
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("images.npy", _npy_bytes(mpi3d_images())[:-5000])
        words = "truncated or corrupt"
    elif case == "no_images":
        np.savez(p, imgs=mpi3d_images())
        words = "no array 'images'"
    elif case == "float":
        np.savez(p, images=mpi3d_images().astype(np.float32))
        words = "expected uint8"
    elif case == "grid":
        np.savez(p, images=mpi3d_images())
        kw, words = {}, "needs 1036800"
    elif case == "objects":
        np.savez(p, images=np.array([None, 1], dtype=object))
        words = "refusing to unpickle"
    elif case == "too_big":
        np.savez_compressed(p, images=mpi3d_images())
        kw["max_memory_gb"], words = 1e-6, "is compressed and needs"
    elif case == "variant":
        np.savez(p, images=mpi3d_images())
        kw["variant"], words = "cartoon", "not one of toy, realistic, real"
    with pytest.raises(err, match=re.escape(words)) as e:
        MPI3D(path=p, **kw)
    assert "\n" not in str(e.value) and (case == "variant" or p.name in str(e.value))


def _npy_bytes(a):
    import io

    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


# ---- smallnorb -----------------------------------------------------------------------------------
def test_smallnorb_reads_the_official_binary_files(tmp_path):
    from dislab.data.smallnorb import SmallNORB

    d = SmallNORB(path=smallnorb_folder(tmp_path / "norb"))
    assert d.factor_names == ("category", "elevation", "azimuth", "lighting") and d.factor_sizes == (5, 9, 18, 6)
    assert d.x_shape == (1, 64, 64) and d.images.shape == (2 * 4860, 64, 64)
    f, x = check_protocol(d, n=400)
    left, right = np.rint(x[:, 0, 32, 8] * 255), np.rint(x[:, 0, 32, 56] * 255)
    assert np.array_equal(left, f[:, 1] * 18 + f[:, 2])
    assert np.array_equal(right // 2, f[:, 0] * 6 + f[:, 3])
    training = right % 2
    assert 0.35 < training.mean() < 0.65  # the instance is drawn from rng, both halves show up


@pytest.mark.parametrize("case", ["missing", "missing_file", "magic", "truncated", "shapes", "values", "grid"])
def test_smallnorb_bad_files_get_one_clear_line(tmp_path, case):
    from dislab.data.smallnorb import CHUNKS, SmallNORB

    folder = tmp_path / "norb"
    err, words, name = ValueError, None, None
    if case == "missing":
        err, words = FileNotFoundError, "does not exist"
    else:
        smallnorb_folder(folder, side=8, drop=3 if case == "grid" else 0)
        dat = folder / f"smallnorb-{CHUNKS[1]}-dat.mat"
        info = folder / f"smallnorb-{CHUNKS[0]}-info.mat"
        if case == "missing_file":
            info.unlink()
            err, words, name = FileNotFoundError, "does not exist", info.name
        elif case == "magic":
            norb_write(dat, np.zeros((4860, 2, 8, 8), np.int32))
            words, name = "magic number", dat.name
        elif case == "truncated":
            dat.write_bytes(dat.read_bytes()[:-100])
            words, name = "truncated or corrupt", dat.name
        elif case == "shapes":
            norb_write(dat, np.zeros((4860, 8, 8), np.uint8))
            words = "expected"
        elif case == "values":
            a = np.fromfile(info, "<i4")[5:].reshape(-1, 4)
            a[0, 2] = 3  # an odd azimuth
            norb_write(info, a.astype(np.int32))
            words = "outside the published ranges"
        elif case == "grid":
            words = "do not cover the factor grid"
    with pytest.raises(err, match=re.escape(words)) as e:
        SmallNORB(path=folder)
    assert "\n" not in str(e.value) and (name or folder.name) in str(e.value)


# ---- cars3d --------------------------------------------------------------------------------------
def test_cars3d_reads_the_official_mat_files(tmp_path):
    from dislab.data.cars3d import Cars3D

    d = Cars3D(path=cars3d_folder(tmp_path / "cars"))
    assert d.factor_names == ("elevation", "azimuth", "object_type") and d.factor_sizes == (4, 24, 183)
    f, x = check_protocol(d, n=200)
    rgb = np.rint(x[:, :, 30, 30] * 255)
    assert np.array_equal(rgb, np.column_stack([f[:, 0] * 60, f[:, 1] * 10, f[:, 2]]))


@pytest.mark.parametrize("case", ["missing", "count", "no_im", "shape", "corrupt"])
def test_cars3d_bad_files_get_one_clear_line(tmp_path, case):
    import scipy.io

    from dislab.data.cars3d import Cars3D

    folder, err, words = tmp_path / "cars", ValueError, None
    if case == "missing":
        err, words = FileNotFoundError, "does not exist"
    else:
        cars3d_folder(folder, side=4, count=182 if case == "count" else 183)
        bad = folder / "car_007_mesh.mat"
        if case == "count":
            words = "holds 182 .mat files"
        elif case == "no_im":
            scipy.io.savemat(bad, {"img": np.zeros((4, 4, 3, 24, 4), np.uint8)})
            words = "no array 'im'"
        elif case == "shape":
            scipy.io.savemat(bad, {"im": np.zeros((4, 4, 3, 4, 24), np.uint8)})
            words = "expected uint8 (H, W, 3, 24, 4)"
        elif case == "corrupt":
            bad.write_bytes(bad.read_bytes()[:300])
            words = "not a readable MATLAB"
    with pytest.raises(err, match=re.escape(words)) as e:
        Cars3D(path=folder)
    assert "\n" not in str(e.value) and folder.name in str(e.value)


# ---- images --------------------------------------------------------------------------------------
def test_images_folder_is_cropped_resized_and_factorless(tmp_path):
    from dislab.data.images import Images

    d = Images(path=image_folder(tmp_path / "faces"))
    assert d.has_factors is False and len(d) == 5 and d.factor_sizes == (5,) and d.x_shape == (3, 64, 64)
    f, x = check_protocol(d, n=10)
    x = d.sample_observations_from_factors(np.arange(5)[:, None])
    assert np.abs(x[:, 0, 4:-4, 4:-4]).max() < 0.1 and np.abs(x[:, 1, 4:-4, 4:-4] - 200 / 255).max() < 0.1  # jpeg
    order = np.argsort([str(p) for p in d.files])
    assert np.allclose(x[:, 2, 32, 32][order], np.array([1, 2, 3, 4, 0]) * 40 / 255, atol=0.05)
    cached = Images(path=tmp_path / "faces", cache_dir=tmp_path / "cache")
    again = Images(path=tmp_path / "faces", cache_dir=tmp_path / "cache")
    assert isinstance(again.images, np.memmap) and len(list((tmp_path / "cache").iterdir())) == 1
    assert np.array_equal(cached.sample_observations_from_factors(f), d.sample_observations_from_factors(f))


@pytest.mark.parametrize("case", ["missing", "empty", "corrupt", "budget"])
def test_images_bad_folders_get_one_clear_line(tmp_path, case):
    from dislab.data.images import Images

    folder, kw, err = tmp_path / "faces", {}, ValueError
    if case == "missing":
        err, words = FileNotFoundError, "does not exist"
    elif case == "empty":
        (folder / "sub").mkdir(parents=True)
        (folder / "a.txt").write_text("x")
        words = "holds no image files"
    elif case == "corrupt":
        image_folder(folder)
        (folder / "im2.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
        kw, words = {"cache_dir": tmp_path / "cache"}, "im2.png is not a readable image"
    elif case == "budget":
        image_folder(folder)
        kw, words = {"max_memory_gb": 1e-6}, "pass cache_dir"
    with pytest.raises(err, match=re.escape(words)) as e:
        Images(path=folder, **kw)
    assert "\n" not in str(e.value)
    assert not list((tmp_path / "cache").glob("*")) if (tmp_path / "cache").exists() else True


# ---- dSprites variants ---------------------------------------------------------------------------
def test_color_and_noisy_dsprites_follow_disentanglement_lib():
    pytest.importorskip("dislab.data.dsprites")
    from dislab.data.color_dsprites import ColorDSprites
    from dislab.data.dsprites import DSprites
    from dislab.data.noisy_dsprites import NoisyDSprites

    plain = DSprites()
    for cls in (ColorDSprites, NoisyDSprites):
        d = cls()
        assert d.factor_names == plain.factor_names and d.factor_sizes == plain.factor_sizes
        assert d.x_shape == (3, 64, 64)
        f, x = check_protocol(d, n=16)
        sprite = plain.sample_observations_from_factors(f, RNG(0)) > 0.5  # (n, 1, 64, 64)
        if cls is ColorDSprites:  # black background, one colour in [0.5, 1]^3 per sprite
            assert (x * ~sprite == 0).all()
            colours = x.max((2, 3))
            assert ((colours >= 0.5) & (colours <= 1)).all() and np.allclose(x, sprite * colours[:, :, None, None])
            assert len(np.unique(colours.round(4), axis=0)) == 16
        else:  # white sprite on noise that differs per channel and image
            assert (x[np.broadcast_to(sprite, x.shape)] == 1).all()
            noise = x[np.broadcast_to(~sprite, x.shape)]
            assert 0.45 < noise.mean() < 0.55 and noise.std() > 0.25
        assert not np.array_equal(x, d.sample_observations_from_factors(f, RNG(1)))


def test_scream_dsprites_inverts_a_random_crop_of_the_background(tmp_path):
    pytest.importorskip("dislab.data.dsprites")
    from dislab.data.dsprites import DSprites
    from dislab.data.scream_dsprites import ScreamDSprites

    Image.fromarray(RNG(0).integers(0, 256, (500, 400, 3), dtype=np.uint8)).save(tmp_path / "big.png")
    assert ScreamDSprites(background=tmp_path / "big.png")._picture.shape == (274, 219, 3)  # thumbnail(350, 274)
    pic = RNG(1).integers(0, 256, (70, 68, 3), dtype=np.uint8)  # crops start at rows 0-5, columns 0-3
    Image.fromarray(pic).save(tmp_path / "scream.png")
    d = ScreamDSprites(background=tmp_path / "scream.png")
    assert d.x_shape == (3, 64, 64) and d.factor_sizes == DSprites().factor_sizes
    f, x = check_protocol(d, n=16)
    sprite = DSprites().sample_observations_from_factors(f, RNG(0)) > 0.5
    assert sprite.any((1, 2, 3)).all()
    back = np.where(sprite, 1 - x, x) * 2  # undo the inversion: crop + colour everywhere
    pic = pic.astype(np.float32).transpose(2, 0, 1) / 255
    seen = set()
    for i in range(16):  # exactly one crop position leaves a constant colour in [0, 1] per channel
        fits = [(r, c) for r in range(6) for c in range(4)
                if (np.ptp((back[i] - pic[:, r:r + 64, c:c + 64]).reshape(3, -1), axis=1) < 1e-5).all()]
        assert len(fits) == 1, fits
        colour = (back[i] - pic[:, fits[0][0]:fits[0][0] + 64, fits[0][1]:fits[0][1] + 64])[:, 0, 0]
        assert ((colour >= 0) & (colour <= 1)).all()
        seen.add(fits[0])
    assert len(seen) > 5
    for err, bg, words in [(FileNotFoundError, None, "no background given and none in the data directory .*; download "
                            "it once with `python -m dislab.data.download scream`, or pass dataset.background=<file>"),
                           (FileNotFoundError, tmp_path / "x.jpg", "does not exist")]:
        with pytest.raises(err, match=words):
            ScreamDSprites(background=bg)
    Image.fromarray(pic[0, :60].astype(np.uint8)).save(tmp_path / "small.png")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8garbage")
    with pytest.raises(ValueError, match="must exceed 64"):
        ScreamDSprites(background=tmp_path / "small.png")
    with pytest.raises(ValueError, match="bad.jpg is not a readable image"):
        ScreamDSprites(background=tmp_path / "bad.jpg")


# ---- preview and training --------------------------------------------------------------------------
def test_preview_writes_samples_then_one_row_per_factor(tmp_path):
    from dislab.preview import LABEL_WIDTH, PAD, main

    out = main(["dataset=toy", f"out={tmp_path / 'p.png'}", "cols=6", "rows=2", "+size=32"])
    img = np.asarray(Image.open(out))
    rows, cols = 2 + 4, 6  # samples, then posX, posY, scale, intensity
    assert img.shape == (PAD + rows * (32 + PAD), LABEL_WIDTH + PAD + cols * (32 + PAD), 3)
    tile = lambda r, c: img[PAD + r * (32 + PAD):PAD + r * (32 + PAD) + 32,  # noqa: E731
                            LABEL_WIDTH + PAD + c * (32 + PAD):LABEL_WIDTH + PAD + c * (32 + PAD) + 32]
    assert not np.array_equal(tile(2, 0), tile(2, 1))  # posX sweep moves the square
    assert (tile(4, 5) == 128).all()  # scale has 4 values: the rest of its row is blank
    shapes3d_file(tmp_path / "s.h5")
    out = main(["dataset=shapes3d", f"path={tmp_path / 's.h5'}", f"out={tmp_path / 'q.png'}", "cols=4", "rows=1"])
    assert np.asarray(Image.open(out)).shape[0] == PAD + 7 * (64 + PAD)


DATASETS = sorted(p.stem for p in (CONF / "dataset").glob("*.yaml"))


@pytest.mark.parametrize("name", DATASETS)
def test_every_dataset_trains_a_few_steps(tmp_path, name):
    from dislab.train import run

    if "dsprites" in name:
        pytest.importorskip("dislab.data.dsprites")
    cfg = compose([f"dataset={name}", "net=conv64", "steps=1", "batch_size=8", "logger=none", "metrics=none",
                   "metrics_every=0", "eval_untrained=false", "num_eval=16", "++num_decomposition=0", "trainer=cpu",
                   "+trainer.enable_progress_bar=false", "+trainer.enable_model_summary=false",
                   f"run_dir={tmp_path / 'run'}", *real_file_overrides(name, tmp_path)])
    run(cfg)
    rep = np.load(tmp_path / "run" / "representation.npz")
    assert rep["means"].shape == (16, 10) and np.isfinite(rep["means"]).all()


@pytest.mark.parametrize("name", DATASETS)
def test_every_dataset_renders_on_a_device_the_numpy_images(tmp_path, name):
    """``render`` gives the numpy renderer's images from the same generator, which ends in the same state: painted
    with torch (its small files held on the device) wherever the data set says it paints (``GroundTruthData.paints``,
    the contract), numpy's images copied elsewhere."""
    import torch
    from hydra.utils import instantiate

    d = instantiate(compose([f"dataset={name}", *real_file_overrides(name, tmp_path)]).dataset)
    f = d.sample_factors(48, RNG(0))
    a, b = RNG(1), RNG(1)
    x, y = d.sample_observations_from_factors(f, a), d.render(f, b, torch.device("cpu")).numpy()
    assert y.dtype == np.float32 and y.shape == x.shape and str(a.bit_generator.state) == str(b.bit_generator.state)
    if name == "noisy_dsprites":  # another noise (tests/test_device.py); the same sprites
        assert np.array_equal(x == 1, y == 1)
    else:
        assert np.array_equal(x, y), np.abs(x - y).max()


@pytest.mark.parametrize("size", [16, 32, 64])
def test_toy_is_a_bijection_at_every_size(size):
    """Every factor combination gives its own non-blank image (at size 16 the squares were once 0 pixels)."""
    from dislab.data.toy import Toy

    d = Toy(size=size)
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in d.factor_sizes], indexing="ij"), -1).reshape(-1, 4)
    x = d.sample_observations_from_factors(grid).reshape(len(grid), -1)
    assert len(np.unique(x, axis=0)) == 1024 and x.max(1).min() == pytest.approx(0.4)


def test_prefetched_batches_are_the_per_step_batches_and_errors_reach_the_loop():
    import itertools

    import torch

    from dislab.data.datamodule import _Batches
    from dislab.data.toy import Toy

    ahead = list(itertools.islice(iter(_Batches(Toy(size=16), 8, seed=3, start=5, prefetch=2)), 4))
    inline = list(itertools.islice(iter(_Batches(Toy(size=16), 8, seed=3, start=5, prefetch=0)), 4))
    assert all(torch.equal(a, b) for a, b in zip(ahead, inline, strict=True))
    assert not torch.equal(ahead[0], ahead[1])

    class Broken(Toy):
        def sample_observations(self, n, rng):
            raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        next(iter(_Batches(Broken(size=16), 8, seed=0, start=0)))
