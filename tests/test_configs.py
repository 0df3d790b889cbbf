"""Every YAML under conf/ composes (found by globbing, never by a list)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from conftest import CONF, compose

GROUP_FILES = sorted(p for p in CONF.rglob("*.yaml") if p.parent != CONF)


def _override(path):
    rel = path.relative_to(CONF).with_suffix("")
    return f"{'/'.join(rel.parts[:-1])}={rel.parts[-1]}"


def test_the_glob_finds_the_groups():
    groups = {p.parent.name for p in GROUP_FILES}
    assert {"model", "net", "dataset", "metrics", "logger", "trainer", "debug"} <= groups


@pytest.mark.parametrize("path", GROUP_FILES, ids=_override)
def test_group_file_composes(path):
    cfg = compose([_override(path)])
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["model"]["_target_"].startswith("dislab.models.")


def test_top_level_config_composes_with_design_defaults():
    cfg = compose()
    assert cfg.model._target_ == "dislab.models.beta_tcvae.BetaTCVAE" and cfg.beta == 6
    assert cfg.batch_size == 64 and cfg.lr == 1e-4 and cfg.z_dim == 10
    assert cfg.net._target_ == "dislab.nets.conv64.Conv64"
    assert cfg.dataset._target_ == "dislab.data.dsprites.DSprites"
    assert "mig" in cfg.metrics and cfg.metrics_during.mig.num_train < 10_000


def test_model_files_are_named_after_their_module():
    """One word, one thing: conf/model/<name>.yaml targets dislab.models.<name>."""
    for p in (CONF / "model").glob("*.yaml"):
        target = compose([f"model={p.stem}"]).model._target_
        assert target.split(".")[2] == p.stem, (p, target)


def test_a_group_file_sets_knobs_and_the_command_line_still_wins():
    """train.yaml lists _self_ first: debug=fdr's steps/num_eval take effect (they were silently
    overridden by train.yaml's when _self_ came last), and an explicit override beats both."""
    cfg = compose(["debug=fdr"])
    assert (cfg.steps, cfg.num_eval, cfg.metrics_every) == (5, 256, 0)
    assert compose(["debug=fdr", "steps=7"]).steps == 7
    assert compose(["model=infogan"]).lr == 1e-3 and compose(["model=infogan", "lr=2e-4"]).lr == 2e-4
