"""The study presets (``conf/sweep/<model>_grid.yaml``) against disentanglement_lib's unsupervised study,
hand-typed from its source (not read from the YAML under test): ``config/unsupervised_study_v1/sweep.py``
(grids), ``model_configs/shared.gin`` (budget, batch, latents, both Adams), ``metric_configs/*.gin``; the
weakly-supervised presets against Locatello et al. 2020's study (its Section 5: beta x k in {1, Rnd}, the
unsupervised study's budget; its pairs dlib's ``simple_dynamics``, k_rule one_or_k)."""

from __future__ import annotations

import pytest
import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate

from conftest import CONF
from dislab.cli import model_knobs
from dislab.evaluate import metric_settings
from dislab.nets.mlp import MLP

# sweep.py get_default_models(): the knob each method sweeps, its six values, and what it fixes
GRIDS = {
    "beta_vae": ("beta", [1, 2, 4, 6, 8, 16]),
    "annealed_vae": ("c_max", [5, 10, 25, 50, 75, 100]),
    "factor_vae": ("gamma", [10, 20, 30, 40, 50, 100]),
    "dip_vae_i": ("lambda_od", [1, 2, 5, 10, 20, 50]),
    "dip_vae_ii": ("lambda_od", [1, 2, 5, 10, 20, 50]),
    "beta_tcvae": ("beta", [1, 2, 4, 6, 8, 10]),
}
# Locatello et al. 2020: beta 1..16 x k = 1 and k = Rnd (-1), pairs by dlib's simple_dynamics (1 or k change)
WEAK = {m: {"beta": [1, 2, 4, 6, 8, 16], "k": [1, -1]} for m in ("ada_gvae", "ada_ml_vae", "group_vae", "ml_vae")}
FIXED = {  # the model's attributes for a grid value v
    "beta_vae": lambda v: {"beta": v},
    "annealed_vae": lambda v: {"c_max": v, "gamma": 1000, "c_steps": 100_000},  # iteration_threshold 100000
    "factor_vae": lambda v: {"gamma": v},
    "dip_vae_i": lambda v: {"lambda_od": v, "lambda_d": 10 * v},  # lambda_d_factor 10
    "dip_vae_ii": lambda v: {"lambda_od": v, "lambda_d": 1 * v},  # lambda_d_factor 1
    "beta_tcvae": lambda v: {"beta": v, "alpha": 1, "gamma": 1, "estimator": "mws"},  # dlib: alpha = gamma = 1, MWS
}
# shared.gin: model.training_steps 300000, batch_size 64, encoder.num_latent 10, conv_encoder/deconv_decoder,
# vae/AdamOptimizer lr 1e-4 (0.9, 0.999, 1e-8), discriminator/AdamOptimizer lr 1e-4 (0.5, 0.9, 1e-8).
# FactorVAE: both minimize() calls advance global_step, so 300,000 counted steps were 150,000 iterations.
STEPS = {"factor_vae": 150_000}
VAE_ADAM = {"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8}
D_ADAM = {"lr": 1e-4, "betas": (0.5, 0.9), "eps": 1e-8}
INFOGAN_ADAM = ({"lr": 1e-3, "betas": (0.5, 0.999), "eps": 1e-8}, {"lr": 2e-4, "betas": (0.5, 0.999), "eps": 1e-8})
# metric_configs/*.gin (downstream_task: downstream_task_boosted_trees.gin), and what the metrics' code fixes:
# GradientBoostingClassifier() (100 depth-3 stages, lr 0.1), LinearSVC(C=0.01), LogisticRegression() (C=1)
METRICS = {
    "mig": {"num_train": 10_000, "num_bins": 20},
    "dci": {"num_train": 10_000, "num_test": 5_000, "n_estimators": 100, "learning_rate": 0.1, "max_depth": 3},
    "sap": {"num_train": 10_000, "num_test": 5_000, "continuous_factors": False, "C": 0.01},
    "modularity": {"num_train": 10_000, "num_test": 5_000, "num_bins": 20, "C": 1.0},
    "unsupervised": {"num_train": 10_000, "num_bins": 20},
    "beta_vae_score": {"batch_size": 64, "num_train": 10_000, "num_eval": 5_000, "C": 1.0},
    "factor_vae_score": {"batch_size": 64, "num_train": 10_000, "num_eval": 5_000, "num_variance_estimate": 10_000,
                         "prune_threshold": 0.05},
    "downstream_task": {"num_train": (10, 100, 1_000, 10_000), "num_test": 5_000, "predictor": "boosted_trees",
                        "n_estimators": 100, "learning_rate": 0.1, "max_depth": 3},
}
PRESETS = sorted(p.stem.removesuffix("_grid") for p in (CONF / "sweep").glob("*_grid.yaml"))


def _preset(model, *overrides):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hydra_compose("train", overrides=[f"sweep={model}_grid", *overrides], return_hydra_config=True)


def _values(key, value) -> list:
    (o,) = OverridesParser.create().parse_overrides([f"{key}={value}"])
    return [float(v) for v in o.sweep_string_iterator()]


def _adam(opt) -> dict:
    return {k: (tuple(opt.defaults[k]) if k == "betas" else opt.defaults[k]) for k in ("lr", "betas", "eps")}


def _model(cfg):
    torch.manual_seed(0)
    net = MLP((1, 64, 64), cfg.z_dim, hidden=8)
    return instantiate(cfg.model, net=net, optimizer=instantiate(cfg.optimizer), dataset_size=737_280)


def test_every_model_has_a_preset():
    assert set(GRIDS) | {p.stem for p in (CONF / "model").glob("*.yaml")} <= set(PRESETS)


@pytest.mark.parametrize("model", PRESETS)
def test_preset_trains_the_studys_budget_and_settings(model):
    cfg = _preset(model)
    assert cfg.hydra.mode.name == "MULTIRUN" and cfg.hydra.runtime.choices.model == model
    assert cfg.steps == STEPS.get(model, 300_000) and cfg.batch_size == 64 and cfg.z_dim == 10
    assert cfg.net._target_ == "dislab.nets.conv64.Conv64"
    params = dict(cfg.hydra.sweeper.params)
    assert _values("seed", params.pop("seed")) == [0, 1, 2, 3, 4]
    if model in GRIDS:
        knob, grid = GRIDS[model]
        assert set(params) == {knob} and _values(knob, params[knob]) == grid
    elif model in WEAK:
        assert {k: _values(k, v) for k, v in params.items()} == WEAK[model]
    else:  # not in the study: grids over the model's own knobs
        assert set(params) <= set(model_knobs()[model]) and all(len(_values(k, v)) == 6 for k, v in params.items())
    assert set(cfg.metrics) == set(METRICS)
    settings = metric_settings(instantiate(cfg.metrics))
    for name, knobs in METRICS.items():
        assert {k: settings[name][k] for k in knobs} == knobs, name
    opts = _model(cfg).configure_optimizers()
    opts = opts if isinstance(opts, list) else [opts]
    if model == "infogan":  # not in the study: its paper's optimizers
        assert [_adam(o) for o in opts] == list(INFOGAN_ADAM)
        return
    assert _adam(opts[0]) == VAE_ADAM
    if len(opts) > 1:  # FactorVAE's discriminator (AAE's uses the same settings)
        assert _adam(opts[1]) == D_ADAM


@pytest.mark.parametrize("model", sorted(GRIDS))
def test_every_grid_value_reaches_the_model(model):
    knob, grid = GRIDS[model]
    cfg = _preset(model)
    for v in grid:
        cfg[knob] = v  # as the sweeper's override sets it; the model's ${knob} reads it
        m = _model(cfg)
        assert {k: getattr(m, k) for k in FIXED[model](v)} == FIXED[model](v), (model, v)


@pytest.mark.parametrize("model", sorted(WEAK))
def test_every_weak_grid_value_reaches_the_model_and_its_pairs(model):
    cfg = _preset(model)
    for beta in WEAK[model]["beta"]:
        for k in WEAK[model]["k"]:
            cfg.beta, cfg.k = beta, k
            m = _model(cfg)
            assert (m.beta, m.pairs) == (beta, {"k": k, "k_rule": "one_or_k"}), (model, beta, k)
