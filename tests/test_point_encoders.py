"""Deterministic encoders (AE, AAE, InfoGAN: ``stochastic = False``) have no posterior variance: UDR's
latent-activity filter uses the means' variation instead of the KL, ``representation.npz`` holds no KL,
and metrics that read the posterior (mig_chen) refuse them in one line."""

from __future__ import annotations

import numpy as np
import pytest
from hydra.utils import instantiate

from conftest import compose
from dislab.data.toy import Toy
from dislab.nets.mlp import MLP
from dislab.validate import ConfigError


def _model(name):
    cfg = compose([f"model={name}", "z_dim=10"])
    return instantiate(cfg.model, net=MLP((1, 16, 16), 10, hidden=8), optimizer=instantiate(cfg.optimizer),
                       dataset_size=1024)


def test_udr_counts_a_point_encoders_latent_as_active_when_it_varies():
    from dislab.metrics.udr import udr

    rng = np.random.default_rng(0)
    m = Toy().index_to_factors(np.arange(1024)).astype(float)  # 4 exactly uncorrelated latents
    const = np.zeros((1024, 1))
    a = {"means": np.c_[m, const], "stochastic": np.bool_(False), "eval_seed": 0}  # InfoGAN-like zero slot
    b = {"means": np.c_[const, m[:, [3, 1, 0, 2]] * [2, -1, 1, 3]], "stochastic": np.bool_(False), "eval_seed": 0}
    # the constant latents are inactive: every remaining row and column has exactly one |rho| = 1
    assert [r["udr_spearman"] for r in udr([a, b])] == pytest.approx([1.0, 1.0], abs=1e-12)
    # a KL an untrained head wrote is not read for a point encoder (it would drop latents 0-1 of a)
    a_kl = {**a, "kl": np.array([0.0, 0.0, 1.0, 1.0, 1.0])}
    assert [r["udr_spearman"] for r in udr([a_kl, b])] == pytest.approx([1.0, 1.0], abs=1e-12)
    # a varying latent counts, even if it carries nothing of b's: its row scores ~0 of 5
    noisy = {**a, "means": np.c_[m, rng.normal(size=(1024, 1))]}
    assert 0.85 < udr([noisy, b])[0]["udr_spearman"] < 0.95
    # the same runs marked stochastic use their KL (here: latent 4 of a and 0 of b dead)
    sa, sb = {**a, "stochastic": np.bool_(True), "kl": np.r_[np.ones(4), 0.0]}, {**b, "kl": np.r_[0.0, np.ones(4)]}
    assert [r["udr_spearman"] for r in udr([sa, {**sb, "stochastic": np.bool_(True)}])] == pytest.approx([1.0, 1.0])


@pytest.mark.parametrize("name, stochastic", [("vae", True), ("ae", False), ("aae", False), ("infogan", False)])
def test_representation_has_a_kl_only_for_a_posterior(name, stochastic):
    from dislab.evaluate import representation

    rep = representation(_model(name), Toy(size=16), 32)
    assert bool(rep["stochastic"]) == stochastic and ("kl" in rep) == stochastic
    assert rep["means"].shape == (32, 10) and rep["factors"].shape == (32, 4)


@pytest.mark.parametrize("name", ["ae", "aae", "infogan"])
def test_mig_chen_refuses_a_deterministic_encoder(name):
    from dislab.evaluate import check_posterior_metrics, compute_metrics

    metrics = instantiate(compose(["metrics=all"]).metrics)
    model = _model(name)
    with pytest.raises(ConfigError, match=r"metric mig_chen needs the posterior's variance, which \w+ lacks .* "
                                          r"use mig, or drop it with ~metrics.mig_chen"):
        compute_metrics(metrics, Toy(size=16), model)
    without = compose(["metrics=all", "~metrics.mig_chen"]).metrics  # the fix the message names
    assert "mig_chen" not in without and "mig" in without
    check_posterior_metrics(model, instantiate(without))
    check_posterior_metrics(_model("vae"), metrics)  # a VAE is scored


def test_a_point_encoder_run_with_mig_chen_stops_before_training(tmp_path):
    from conftest import FAST
    from dislab.train import run

    fast = [o for o in FAST if not o.startswith(("metrics=", "++metrics.mig."))]
    with pytest.raises(ConfigError, match="metric mig_chen needs the posterior's variance, which AE lacks"):
        run(compose([*fast, "model=ae", "metrics=mig_chen", "eval_untrained=false", f"run_dir={tmp_path / 'run'}"]))
    assert not (tmp_path / "run" / "checkpoints").exists()
