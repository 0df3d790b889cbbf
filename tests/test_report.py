"""``python -m dislab.report``: run and sweep directories -> report.html, table.csv and PNGs."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys

import numpy as np
from omegaconf import OmegaConf
from PIL import Image

from conftest import ROOT
from dislab.report import build
from dislab.sweep.runs import find_runs, hyperparameters

MODELS = {"beta_vae": "BetaVAE", "beta_tcvae": "BetaTCVAE"}


def _run_dir(d, model, beta, seed, metrics=None, error=None):
    """A run directory with the files run() leaves (those the report reads)."""
    (d / ".hydra").mkdir(parents=True)
    cfg = {"seed": seed, "beta": beta, "steps": 3, "model": {"_target_": f"dislab.models.{model}.{MODELS[model]}",
                                                             "beta": "${beta}"}}
    OmegaConf.save(OmegaConf.create(cfg), d / ".hydra" / "config.yaml")
    OmegaConf.save(OmegaConf.create([f"model={model}", f"beta={beta}", f"seed={seed}", "steps=3"]),
                   d / ".hydra" / "overrides.yaml")
    if error:
        (d / "error.txt").write_text(error + "\n")
    else:
        (d / "metrics.json").write_text(json.dumps({"metrics": metrics, "global_step": 3}))


def _sweep(root):
    """2 models x 2 betas x 3 seeds, one run failed; UDR as the sweep summary writes it."""
    rng = np.random.default_rng(0)
    udr, job = {}, 0
    for model, betas in (("beta_vae", (1, 4)), ("beta_tcvae", (2, 6))):
        for beta in betas:
            for seed in range(3):
                d = root / str(job)
                if job == 11:
                    _run_dir(d, model, beta, seed, error="ValueError: boom")
                else:
                    _run_dir(d, model, beta, seed, {"mig": 0.05 * beta + 0.01 * rng.normal(), "sap": rng.uniform()})
                    udr[str(job)] = {"udr_lasso": rng.uniform(), "udr_spearman": rng.uniform()}
                job += 1
    (root / "udr.json").write_text(json.dumps({"runs": udr}))
    return root


def test_hyperparameters_are_the_overridden_keys_that_vary(tmp_path):
    runs = find_runs([_sweep(tmp_path / "sweep")])
    assert len(runs) == 12 and [r.status for r in runs].count("failed") == 1
    assert runs[11].error == "ValueError: boom" and runs[0].model == "beta_vae"
    assert hyperparameters([r for r in runs if r.model == "beta_vae"]) == ["beta"]  # not seed, not steps


def test_report_holds_the_table_and_its_images(tmp_path):
    sweep = _sweep(tmp_path / "sweep")
    single = tmp_path / "one_run"  # a lone run directory, given beside the sweep
    _run_dir(single, "beta_vae", 16, 0, {"mig": 0.9, "sap": 0.5})
    page = build([sweep, single], tmp_path / "out")
    text = page.read_text()

    table = text[text.index("<table id='summary'>"):text.index("</table>")]
    assert table.count("<tr") == 1 + 5  # header + beta_vae x {1, 4, 16} + beta_tcvae x {2, 6}
    for col in ("mig", "sap", "udr_lasso", "udr_spearman"):
        assert f"<th>{col}</th>" in table
    row = re.search(r"<td class='l'>beta_vae</td><td class='l'>beta=4</td><td>3</td>(.*?)</tr>", table).group(1)
    mean, std = (float(x) for x in re.search(r"<td>([-\d.]+) ± ([-\d.]+)</td>", row).groups())
    assert abs(mean - 0.2) < 0.05 and 0 <= std < 0.05
    assert "beta=6</td><td>2 <span class='bad'>(1 not finished)</span>" in table
    assert "ValueError: boom" in text

    images = re.findall(r"<img src='([^']+)'", text)
    assert set(images) == {"distributions.png", "model_beta_vae.png", "model_beta_tcvae.png"}
    for name in images:
        with Image.open(tmp_path / "out" / name) as im:
            assert im.format == "PNG" and im.size[0] > 300
    with open(tmp_path / "out" / "table.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["hyperparameters"] for r in rows] == ["beta=2", "beta=6", "beta=1", "beta=4", "beta=16"]


def test_command_line_writes_beside_a_single_directory(tmp_path):
    sweep = _sweep(tmp_path / "sweep")
    out = subprocess.run([sys.executable, "-m", "dislab.report", str(sweep)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (sweep / "report" / "report.html").exists() and str(sweep / "report") in out.stdout
    missing = subprocess.run([sys.executable, "-m", "dislab.report", str(tmp_path / "nowhere")], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "is not a directory" in missing.stderr
