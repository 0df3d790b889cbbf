"""The command line, as a user types it (few subprocesses: each costs seconds)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT
from dislab.cli import check_overrides, model_knobs


def _train(*args, timeout=300):
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_model_knobs_are_read_from_the_model_files():
    knobs = model_knobs()
    assert knobs["vae"] == {} and knobs["beta_vae"] == {"beta": 4} and knobs["beta_tcvae"]["estimator"] == "mws"
    assert set(knobs["infogan"]) == {"lam", "n_cat", "cat_dim", "n_cont"}  # its lr and optimizer.betas are shared knobs


def test_a_knob_the_model_lacks_is_refused_in_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        check_overrides(["model=vae", "beta=6"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "model=vae has no knob 'beta'" in err and "beta_vae" in err


def test_a_knob_of_one_model_in_a_sweep_is_refused(capsys):
    with pytest.raises(SystemExit):
        check_overrides(["-m", "model=beta_vae,vae", "beta=1,4"])
    assert "model=vae" in capsys.readouterr().err


def test_valid_overrides_pass():
    check_overrides(["model=beta_vae", "beta=4", "seed=3", "steps=2000"])
    check_overrides(["model=beta_tcvae", "beta=6", "estimator=mss"])
    check_overrides(["--cfg", "job"])
    check_overrides(["metrics=[mig,modularity]", "metrics@metrics_during=[mig, unsupervised]"])  # lists of options


def test_an_unknown_option_in_a_list_of_options_is_named(capsys):
    with pytest.raises(SystemExit):
        check_overrides(["metrics=[mig,nosuch]"])
    assert capsys.readouterr().err.startswith("error: metrics=nosuch is not known; allowed: all, ")


def test_cfg_job_prints_the_config_and_bad_knob_exits_nonzero():
    out = _train("--cfg", "job", "model=beta_vae", "beta=8")
    assert out.returncode == 0 and "beta: 8" in out.stdout and "BetaVAE" in out.stdout
    bad = _train("model=vae", "beta=6")
    assert bad.returncode == 2 and "has no knob 'beta'" in bad.stderr


def test_multirun_runs_every_job(tmp_path):
    out = _train("-m", "model=beta_vae,beta_tcvae", "seed=0,1", "steps=3", "dataset=toy", "net=mlp",
                 "+net.hidden=32", "logger=none", "metrics=mig", "++metrics.mig.num_train=128", "metrics_every=0",
                 "num_eval=64", "eval_untrained=false", "+trainer.enable_progress_bar=false",
                 f"hydra.sweep.dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-2000:]
    done = sorted(p.parent.name for p in tmp_path.glob("*/metrics.json"))
    assert done == ["0", "1", "2", "3"]
