"""The study in one command (``sweep=unsupervised_study``: hydra_plugins.dislab_study.StudySweeper): several
methods' study presets, each with its own grid, as one multirun with one summary and one report; the same
command again resumes it. One real small study (the toy data set, an mlp, 200 steps, 3 methods, 2 seeds)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

from omegaconf import OmegaConf

from conftest import ROOT, TINY

STUDY = ["-m", "sweep=unsupervised_study", "study.methods=[vae,beta_vae,beta_tcvae]", "+study.grid.beta_vae.beta=1,4",
         "+study.grid.beta_tcvae.beta=6", "seed=range(2)", "steps=200", *TINY, "launcher=joblib",
         "hydra.launcher.n_jobs=2"]


def _train(*args):
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def test_the_study_in_one_command_one_sweep_one_summary_one_report_and_it_resumes(tmp_path):
    first = _train(*STUDY, f"hydra.sweep.dir={tmp_path}")
    assert first.returncode == 0, first.stderr[-3000:]
    jobs = sorted((p.parent for p in tmp_path.glob("*/metrics.json")), key=lambda p: int(p.name))
    assert [p.name for p in jobs] == [str(i) for i in range(8)]  # 2 vae + 2 x 2 beta_vae + 2 beta_tcvae
    overrides = [OmegaConf.load(p / ".hydra" / "overrides.yaml") for p in jobs]
    assert [o[:3] for o in overrides[:3]] == [["sweep=vae_grid", "model=vae", "seed=0"],
                                               ["sweep=vae_grid", "model=vae", "seed=1"],
                                               ["sweep=beta_vae_grid", "model=beta_vae", "beta=1"]]
    assert overrides[7][:4] == ["sweep=beta_tcvae_grid", "model=beta_tcvae", "beta=6", "seed=1"]
    assert all("steps=200" in o and "net=mlp" in o for o in overrides)  # the command line over each preset
    config = OmegaConf.load(jobs[4] / ".hydra" / "config.yaml")
    assert config.beta == 4 and config.steps == 200 and config.lr == 1e-4  # the preset's settings, the grid's beta

    with open(tmp_path / "sweep_summary.csv", newline="") as f:
        summary = list(csv.DictReader(f))
    assert len(summary) == 8 and {r["status"] for r in summary} == {"done"}
    assert len({r["cell"] for r in summary}) == 4  # vae, beta_vae x 2, beta_tcvae: one UDR cell each
    report = tmp_path / "report" / "report.html"
    text = report.read_text()
    assert "against the baseline <b>vae</b>" in text and "too few to decide" in text
    assert "id='comparisons-200'" in text and "id='analyses-200'" in text and "curves_200.png" in text
    with open(tmp_path / "report" / "comparisons.csv", newline="") as f:
        compared = {r["compared"] for r in csv.DictReader(f)}
    assert compared == {"beta_vae (beta=1)", "beta_vae (beta=4)", "beta_tcvae (beta=6)"}

    mtimes = {p.name: (p / "metrics.json").stat().st_mtime_ns for p in jobs}
    again = _train(*STUDY, f"hydra.sweep.dir={tmp_path}")  # the same command: every job is skipped
    assert again.returncode == 0, again.stderr[-3000:]
    assert "8 jobs, 8 done (8 from an earlier run, skipped)" in again.stdout
    assert {p.name: (p / "metrics.json").stat().st_mtime_ns for p in jobs} == mtimes


def test_a_method_without_a_study_preset_is_refused_before_any_job(tmp_path):
    out = _train("-m", "sweep=unsupervised_study", "study.methods=[vae,nosuch]", *TINY,
                 f"hydra.sweep.dir={tmp_path}")
    assert out.returncode != 0
    assert "study.methods=['nosuch'] has no study preset" in out.stderr and "beta_tcvae" in out.stderr
    assert not list(tmp_path.glob("*/metrics.json"))


def test_the_study_packed_trains_its_methods_as_one_group_of_normal_runs(tmp_path):
    """pack=8: the study's eight jobs (three methods) share the study's budget, so they train as one packed group;
    each is a normal run of the summary and the report."""
    args = [a for a in STUDY if not a.startswith(("launcher=", "hydra.launcher."))]
    out = _train(*args, "pack=8", f"hydra.sweep.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "packed group 0: jobs 0,1,2,3,4,5,6,7" in out.stdout + out.stderr
    with open(tmp_path / "sweep_summary.csv", newline="") as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["done"] * 8
    for n in range(8):
        saved = json.loads((tmp_path / str(n) / "metrics.json").read_text())
        assert len(saved["packed"]["group"]) == 8 and saved["global_step"] == 200
    assert (tmp_path / "report" / "report.html").exists()
