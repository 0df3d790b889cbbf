"""Shared fixtures: compose real configs from conf/ and run them in-process."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ["DISLAB_DATA"] = tempfile.mkdtemp(prefix="dislab-data-")  # no test reads the user's downloaded data sets

# the tiny run every test starts from: the toy data set, a small mlp, batches of 16, MIG, no logger, no progress bar
# or model summary
TINY_CORE = ["dataset=toy", "net=mlp", "+net.hidden=32", "batch_size=16", "metrics=mig", "logger=none",
             "+trainer.enable_progress_bar=false", "+trainer.enable_model_summary=false"]
# ... scored once, at its end, on few points (train.py in a subprocess: sweeps, refusals, SLURM jobs)
TINY = [*TINY_CORE, "++metrics.mig.num_train=128", "metrics_every=0", "num_eval=64", "num_decomposition=0",
        "eval_untrained=false"]
# ... four steps on the CPU, scored during training too (in-process runs: ``run_fast``)
FAST = [*TINY_CORE, "steps=4", "++metrics.mig.num_train=256", "metrics@metrics_during=mig",
        "++metrics_during.mig.num_train=128", "metrics_every=2", "num_eval=128", "num_decomposition=64", "trainer=cpu"]


def compose(overrides=(), config_name="train", **kwargs):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hydra_compose(config_name, overrides=list(overrides), **kwargs)


@pytest.fixture
def run_fast(tmp_path):
    """Train in-process with FAST settings plus ``overrides``; returns (metrics, run_dir)."""
    from dislab.train import run

    def _run(*overrides, run_dir=None):
        d = Path(run_dir or tmp_path / "run")
        cfg = compose([*FAST, *overrides, f"run_dir={d}"])
        return run(cfg), d

    return _run
