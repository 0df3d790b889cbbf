"""Shared fixtures: compose real configs from conf/ and run them in-process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

# a few-step, few-point run on the toy data set
FAST = ["dataset=toy", "net=mlp", "+net.hidden=32", "steps=4", "batch_size=16", "metrics=mig",
        "++metrics.mig.num_train=256", "metrics@metrics_during=mig", "++metrics_during.mig.num_train=128",
        "metrics_every=2", "num_eval=128", "num_decomposition=64", "logger=none", "trainer=cpu",
        "+trainer.enable_progress_bar=false", "+trainer.enable_model_summary=false"]


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
