"""``python -m dislab.report``: run and sweep directories -> report.html, table.csv and PNGs."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from conftest import ROOT
from dislab import atomic
from dislab.report.page import build, study
from dislab.sweep.runs import find_runs, hyperparameters

MODELS = {"beta_vae": ("BetaVAE", 4), "beta_tcvae": ("BetaTCVAE", 6), "vae": ("VAE", None)}
SETTINGS = {"mig": {"function": "dislab.metrics.mig.mig", "num_train": 10_000, "num_bins": 20, "batch_size": 16,
                    "encode_batch": None}}


def _run_dir(d, model, seed, metrics=None, error=None, overrides=(), steps=3, untrained=None, **knobs):
    """A run directory with the files run() leaves (those the report reads). The model's own knob
    (beta) takes the model YAML's default unless given in ``knobs``; only ``overrides`` are typed."""
    cls, default_beta = MODELS[model]
    (d / ".hydra").mkdir(parents=True)
    cfg = {"seed": seed, "steps": steps, "run_dir": str(d), "sweep_name": "${now:%Y}", "lr": 1e-4,
           "model": {"_target_": f"dislab.models.{model}.{cls}"}, "net": {"_target_": "dislab.nets.mlp.MLP"},
           "dataset": {"_target_": "dislab.data.toy.Toy"}}
    if default_beta is not None:
        cfg["beta"] = knobs.pop("beta", default_beta)
        cfg["model"]["beta"] = "${beta}"
    cfg.update(knobs)
    OmegaConf.save(OmegaConf.create(cfg), d / ".hydra" / "config.yaml")
    OmegaConf.save(OmegaConf.create([f"model={model}", f"seed={seed}", *overrides]), d / ".hydra" / "overrides.yaml")
    if error:
        (d / "error.txt").write_text(error + "\n")
        return d
    (d / "metrics.json").write_text(json.dumps({"metrics": metrics, "global_step": steps, "settings": SETTINGS,
                                                "untrained": untrained or {"mig": 0.01}}))
    rows = ["step,metrics/mig,train/loss,decomposition/kl_0"] + \
        [f"{s},{metrics['mig'] * s / steps!r},{100.0 - s + seed!r},1.0" for s in range(0, steps + 1)]
    (d / "history.csv").write_text("\n".join(rows) + "\n")
    atomic.write_png(d / "pictures" / "traversals.png", np.zeros((8, 8), np.uint8))
    return d


def _sweep(root):
    """2 models x 2 betas x 3 seeds, one run failed; UDR as the sweep summary writes it."""
    rng = np.random.default_rng(0)
    udr, job = {}, 0
    for model, betas in (("beta_vae", (1, 4)), ("beta_tcvae", (2, 6))):
        for beta in betas:
            for seed in range(3):
                d = root / str(job)
                if job == 11:
                    _run_dir(d, model, seed, error="ValueError: boom", beta=beta, overrides=[f"beta={beta}"])
                else:
                    _run_dir(d, model, seed, {"mig": 0.05 * beta + 0.01 * rng.normal(), "sap": rng.uniform()},
                             beta=beta, overrides=[f"beta={beta}"])
                    udr[str(job)] = {"udr_lasso": rng.uniform(), "udr_spearman": rng.uniform()}
                job += 1
    (root / "udr.json").write_text(json.dumps({"runs": udr}))
    return root


def _table(page: Path) -> list[dict]:
    with open(page.parent / "table.csv", newline="") as f:
        return list(csv.DictReader(f))


def _summaries(text: str) -> list[str]:
    return re.findall(r"<table class='summary'>.*?</table>", text, re.S)


def test_hyperparameters_are_the_overridden_keys_that_vary(tmp_path):
    runs = find_runs([_sweep(tmp_path / "sweep")])
    assert len(runs) == 12 and [r.status for r in runs].count("failed") == 1
    assert runs[11].error == "ValueError: boom" and runs[0].model == "beta_vae"
    assert hyperparameters([r for r in runs if r.model == "beta_vae"]) == ["beta"]  # not seed, not steps


def test_labels_name_knobs_that_come_from_a_model_default_or_a_preset(tmp_path):
    """beta=4 (beta_vae's YAML) and beta=6 (beta_tcvae's) differ though nobody typed them; a preset's
    net.hidden too. Seeds, run directories and sweep names differ but are not knobs."""
    _run_dir(tmp_path / "a", "beta_vae", 0, {"mig": 0.1})
    _run_dir(tmp_path / "b", "beta_tcvae", 0, {"mig": 0.2})
    _run_dir(tmp_path / "c", "beta_tcvae", 1, {"mig": 0.3}, net={"_target_": "dislab.nets.mlp.MLP", "hidden": 32})
    _run_dir(tmp_path / "d", "vae", 2, {"mig": 0.0}, lr=1e-3)
    runs = study.load([tmp_path])
    assert study.knobs(runs[0]) == {"beta": 4, "lr": 1e-4, "net": "mlp", "dataset": "toy"}
    groups, keys = study.group(runs)
    assert keys == ["beta", "lr", "net.hidden"]
    labels = ["beta=6, lr=0.0001, net.hidden=default", "beta=6, lr=0.0001, net.hidden=32", "beta=4, lr=0.0001",
              "lr=0.001"]
    models = ["beta_tcvae", "beta_tcvae", "beta_vae", "vae"]
    assert [(r.model, r.label) for r in groups[3]] == list(zip(models, labels, strict=True))
    page = build([tmp_path], tmp_path / "out")
    text = page.read_text()
    assert "<td class='l'>beta_vae</td><td class='l'>beta=4, lr=0.0001</td>" in text
    assert "<td class='l'>beta_tcvae</td><td class='l'>beta=6, lr=0.0001, net.hidden=default</td>" in text
    assert [r["hyperparameters"] for r in _table(page)] == labels
    assert "(defaults)" not in text


def test_report_holds_the_table_and_its_images(tmp_path):
    sweep = _sweep(tmp_path / "sweep")
    single = tmp_path / "one_run"  # a lone run directory, given beside the sweep
    _run_dir(single, "beta_vae", 0, {"mig": 0.9, "sap": 0.5}, beta=16)
    out = tmp_path / "elsewhere" / "out"
    page = build([sweep, single], out)
    text = page.read_text()

    [table] = _summaries(text)
    assert table.count("<tr") == 1 + 5  # header + beta_vae x {1, 4, 16} + beta_tcvae x {2, 6}
    for col in ("mig", "sap", "udr_lasso", "udr_spearman"):
        assert f"{col} <span class='dir'>↑</span></th>" in table
    row = re.search(r"<td class='l'>beta_vae</td><td class='l'>beta=4</td><td>3</td>(.*?)</tr>", table).group(1)
    mean, std = (float(x) for x in re.search(r"<td>([-\d.]+) ± ([-\d.]+)<br>", row).groups())
    assert abs(mean - 0.2) < 0.05 and 0 <= std < 0.05
    assert "beta=6</td><td>2 <span class='bad'>(1 not finished)</span>" in table
    assert "ValueError: boom" in text

    images = re.findall(r"<img class='fig' src='([^']+)'", text)
    assert set(images) == {"distributions_3.png", "model_beta_vae_3.png", "model_beta_tcvae_3.png",
                           "curves_3.png"}  # one figure of curves: every model overlaid
    for name in images:
        with Image.open(out / name) as im:
            assert im.format == "PNG" and im.size[0] > 300
    assert [r["hyperparameters"] for r in _table(page)] == ["beta=2", "beta=6", "beta=1", "beta=4", "beta=16"]

    # each run's pictures, linked relative to the report (thumbnails of the traversals)
    links = set(re.findall(r"href='([^']+/pictures/traversals\.png)'", text))
    assert len(links) == 12 and "../../sweep/0/pictures/traversals.png" in links
    assert all((out / link).resolve().is_file() for link in links)
    assert "<img loading='lazy' src='../../sweep/0/pictures/traversals.png'" in text
    assert "(no pictures)" in text  # the failed run


def test_mean_std_untrained_baseline_and_directions(tmp_path):
    for seed, (mig, base) in enumerate([(0.1, 0.01), (0.2, 0.02), (0.3, 0.06)]):
        _run_dir(tmp_path / str(seed), "beta_vae", seed, {"mig": mig, "gaussian_total_correlation": 1.0 + seed,
                                                          "factor_vae_train_accuracy": 0.5},
                 untrained={"mig": base, "gaussian_total_correlation": 9.0})
    page = build([tmp_path], tmp_path / "out")
    text = page.read_text()
    assert "<td>0.200 ± 0.100<br><span class='u'>untrained 0.030 ± 0.026</span></td>" in text  # std: ddof=1
    assert "<td>2.000 ± 1.000<br><span class='u'>untrained 9.000 ± 0.000</span></td>" in text
    assert "gaussian_total_correlation <span class='dir'>↓</span>" in text
    assert "factor_vae_train_accuracy <span class='dir'>·</span>" in text
    [row] = _table(page)
    assert float(row["mig_mean"]) == pytest.approx(0.2) and float(row["mig_untrained_mean"]) == pytest.approx(0.03)
    assert row["budget"] == "3" and row["seeds"] == "3"
    # the header names the data set, the budget and the metric's sample size
    assert "<dt>data set</dt><dd>toy</dd>" in text and "3 steps (3 runs)" in text
    assert "num_bins=20, num_train=10000" in text


@pytest.mark.parametrize(("key", "arrow"), [
    ("mig", "↑"), ("mig_chen", "↑"), ("dci_disentanglement", "↑"), ("dci_informativeness", "↑"), ("sap", "↑"),
    ("factor_vae_score", "↑"), ("beta_vae_score", "↑"), ("udr_lasso", "↑"), ("udr_spearman", "↑"), ("infoe", "↑"),
    ("downstream_task_100_mean_test_accuracy", "↑"),
    ("gaussian_total_correlation", "↓"), ("gaussian_wasserstein_correlation_norm", "↓"), ("mutual_info_score", "↓"),
    ("fairness_mean_tv_mean_pred_mean_sens", "↓"),
    ("factor_vae_train_accuracy", "·"), ("beta_vae_train_accuracy", "·"), ("dci_informativeness_train", "·"),
    ("explicitness_train", "·"), ("factor_vae_num_active_dims", "·"), ("downstream_task_100_mean_train_accuracy", "·"),
    ("something_new", "?")])
def test_direction_of_every_metric(key, arrow):
    assert study.direction(key) == arrow


def test_budgets_are_never_pooled(tmp_path):
    """The same model and knobs at 3 and at 6 steps: two groups, each with its own mean."""
    for seed in range(2):
        _run_dir(tmp_path / f"short{seed}", "beta_vae", seed, {"mig": 0.1 + 0.1 * seed}, steps=3)
        _run_dir(tmp_path / f"long{seed}", "beta_vae", seed, {"mig": 0.8 + 0.1 * seed}, steps=6)
    page = build([tmp_path], tmp_path / "out")
    text = page.read_text()
    rows = _table(page)
    assert [(r["budget"], r["seeds"], round(float(r["mig_mean"]), 6)) for r in rows] == [("3", "2", 0.15),
                                                                                        ("6", "2", 0.85)]
    assert "<h2 id='budget-3'>3 steps</h2>" in text and "<h2 id='budget-6'>6 steps</h2>" in text
    assert len(_summaries(text)) == 2 and "(kept apart)" in text
    assert (tmp_path / "out" / "distributions_3.png").exists() and (tmp_path / "out" / "distributions_6.png").exists()


def test_a_few_points_are_a_strip_and_many_a_violin():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PathCollection, PolyCollection

    from dislab.report.plots import MIN_VIOLIN, points

    assert MIN_VIOLIN == 5
    fig, ax = plt.subplots()
    points(ax, 0, [0.1, 0.3])
    points(ax, 1, [0.1, 0.2, 0.3, 0.4])
    assert not [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection)) == 6
    points(ax, 2, [0.1, 0.2, 0.3, 0.4, 0.5])
    assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 1
    plt.close(fig)


def test_training_curves_mean_and_spread_over_seeds(tmp_path):
    runs = [study.StudyRun(dir=_run_dir(tmp_path / str(s), "vae", s, {"mig": 0.3}), overrides=[], config={},
                           choices={}, status="done") for s in range(3)]
    histories = [study.read_history(r) for r in runs]
    assert study.curve_keys(histories) == ["train/loss", "metrics/mig"]  # loss first; per-latent KL left out
    steps, mean, low, high = study.mean_curve(histories, "train/loss")
    assert steps.tolist() == [0, 1, 2, 3]
    assert mean.tolist() == [101.0, 100.0, 99.0, 98.0] and low.tolist() == [100.0, 99.0, 98.0, 97.0]
    assert high.tolist() == [102.0, 101.0, 100.0, 99.0]


def test_reference_lays_published_numbers_with_their_sources_beside_ours(tmp_path):
    from dislab.report.references import load

    ref = load("locatello2019")
    # exactly the numbers we hold a source for (issue 13), none more, none changed
    assert {(p.model, p.metric): p.value for p in ref.VALUES} == {
        ("beta_tcvae", "mig"): 0.45, ("beta_vae", "mig"): 0.21, ("factor_vae", "mig"): 0.15, ("vae", "mig"): 0.10,
        ("factor_vae", "factor_vae_score"): 0.82, ("beta_tcvae", "mig_chen"): 0.50}
    for p in ref.VALUES:
        assert p.kind and p.short and ("Lin et al. 2020" in p.source and "Table 1" in p.source
                                       or "rtqichen/beta-tcvae" in p.source and p.metric == "mig_chen")
    assert ref.STEPS == 300_000 and ref.DATASET == "dsprites"

    for seed in range(2):
        _run_dir(tmp_path / "s" / str(seed), "beta_tcvae", seed, {"mig": 0.3 + 0.1 * seed, "mig_chen": 0.4},
                 steps=3000)
    page = build([tmp_path / "s"], tmp_path / "out", reference="locatello2019")
    text = page.read_text()
    with open(tmp_path / "out" / "reference.csv", newline="") as f:
        rows = {(r["metric"], r["model"]): r for r in csv.DictReader(f)}
    mine = rows[("mig", "beta_tcvae")]
    assert float(mine["ours_mean"]) == pytest.approx(0.35) and mine["n"] == "2" and mine["budget"] == "3000"
    assert float(mine["published"]) == 0.45 and "Lin et al. 2020" in mine["source"] and "Table 1" in mine["source"]
    assert float(rows[("mig_chen", "beta_tcvae")]["published"]) == 0.5
    assert "rtqichen/beta-tcvae" in rows[("mig_chen", "beta_tcvae")]["source"]
    assert ("mig", "vae") not in rows and "<td class='l'>vae</td>" not in text  # no model that did not run
    assert "0.45 (best reported) [1]" in text and "0.50 (approximate) [2]" in text
    assert "<li>Lin et al. 2020, InfoGAN-CR and ModelCentrality (ICML 2020), Table 1" in text
    assert "3,000 steps <span class='bad'>(1% of the published 300,000)</span>" in text
    assert "below the 300,000 steps of the published setting" in text and "not a failure" in text
    assert "Our runs are on toy; the published values are on dsprites" in text
    assert "<img class='fig' src='reference.png'" in text


def test_the_header_says_where_the_data_came_from_and_warns_of_a_procedural_stand_in(tmp_path):
    import html

    from dislab.data.source import stand_in_warning

    stand_in = {"kind": "procedural", "dataset": "shapes3d", "stands_in_for": "3dshapes.h5"}
    published = {"kind": "file", "dataset": "shapes3d", "path": "/data/3dshapes.h5", "bytes": 255_369_232,
                 "sha256": "a" * 64}
    for i, src in enumerate((stand_in, stand_in, published, None)):  # None: a metrics.json without "data"
        d = _run_dir(tmp_path / "runs" / str(i), "beta_vae", i, {"mig": 0.1})
        saved = json.loads((d / "metrics.json").read_text())
        (d / "metrics.json").write_text(json.dumps({**saved, **({"data": src} if src else {})}))
    text = build([tmp_path / "runs"], tmp_path / "out").read_text()
    data = re.search(r"<dt>data</dt><dd>(.*?)</dd>", text).group(1).split("<br>")
    assert data == [
        "shapes3d: procedural (dislab&#x27;s re-rendering of the published 3dshapes.h5) (2 runs) "
        "<span class='bad'>(the same data set from different sources)</span>",
        f"shapes3d: file /data/3dshapes.h5 (255,369,232 bytes, sha256 {'a' * 64}) (1 run) "
        "<span class='bad'>(the same data set from different sources)</span>",
        "not recorded in metrics.json (1 run)"]
    assert text.count("class='warn'") == 1 and f"<p class='warn'>{html.escape(stand_in_warning(stand_in))}</p>" in text


def test_udr_over_too_few_seeds_is_marked_beside_its_values(tmp_path):
    """A row whose runs' UDR came from a 2-seed cell says so in the UDR columns; a 4-seed cell's row does not."""
    sweep, runs, cells, job = tmp_path / "sweep", {}, [], 0
    for beta, seeds in ((1, 2), (8, 4)):
        members = []
        for seed in range(seeds):
            _run_dir(sweep / str(job), "beta_vae", seed, {"mig": 0.1}, beta=beta, overrides=[f"beta={beta}"])
            runs[str(job)] = {"udr_lasso": 0.5, "udr_spearman": 0.6}
            members.append(str(job))
            job += 1
        cells.append({"cell": f"model=beta_vae beta={beta}", "runs": members})
    (sweep / "udr.json").write_text(json.dumps({"runs": runs, "cells": cells}))
    [table] = _summaries(build([sweep], tmp_path / "out").read_text())
    few = re.search(r"<td class='l'>beta=1</td>(.*?)</tr>", table).group(1)
    enough = re.search(r"<td class='l'>beta=8</td>(.*?)</tr>", table).group(1)
    assert few.count("over 2 seeds: too few</span>") == 2  # udr_lasso and udr_spearman, not mig
    assert "UDR over 2 seeds: each run" in few and "too few" not in enough and "0.5" in enough


def test_command_line(tmp_path, capsys):
    sweep = _sweep(tmp_path / "sweep")
    out = subprocess.run([sys.executable, "-m", "dislab.report", str(sweep)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (sweep / "report" / "report.html").exists() and str(sweep / "report") in out.stdout
    missing = subprocess.run([sys.executable, "-m", "dislab.report", str(tmp_path / "nowhere")], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "is not a directory" in missing.stderr
    from dislab.report.page import main

    assert main([str(sweep), "--reference", "nosuch", "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()
    err = capsys.readouterr().err
    assert err == "error: --reference 'nosuch' is not a known reference; known: lin2020, locatello2019\n"


def test_report_of_real_runs(run_fast, tmp_path):
    """Runs written by run() itself (in-process: no overrides.yaml, no hydra.yaml): the models' own
    defaults label the rows, and the untrained scores, curves and pictures are found."""
    run_fast("model=beta_vae", run_dir=tmp_path / "runs" / "a")
    run_fast("model=beta_tcvae", run_dir=tmp_path / "runs" / "b")
    text = build([tmp_path / "runs"], tmp_path / "out").read_text()
    assert "<td class='l'>beta_tcvae</td><td class='l'>beta=6</td>" in text
    assert "<td class='l'>beta_vae</td><td class='l'>beta=4</td>" in text
    assert "<span class='u'>untrained " in text and "<h2 id='budget-4'>4 steps</h2>" in text
    assert "<dt>data set</dt><dd>toy</dd>" in text and "fixed for beta_tcvae" in text
    assert "<dt>data</dt><dd>toy: procedural</dd>" in text and "class='warn'" not in text  # no stand-in
    assert (tmp_path / "out" / "curves_4.png").exists()
    assert "href='../runs/a/pictures/traversals.png'" in text
