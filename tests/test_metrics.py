"""Properties of every metric found in conf/metrics/ (a metric file: one top-level key, equal to the
file's stem, holding a ``_target_``): a perfect code scores about 1 where the metric allows it, a
constant code about 0, values do not change when latents are permuted (or rescaled, where the metric
is scale-free), the same generator gives the same values, and every value is a finite float.

Runs on the toy data set (4 factors, 1,024 points) with hand-made encoders and small sample sizes."""

from __future__ import annotations

import inspect
import math
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import yaml
from hydra.utils import get_method

from dislab.data.toy import Toy

CONF = Path(__file__).resolve().parents[1] / "conf" / "metrics"


def metric_files() -> dict[str, str]:
    out = {}
    for path in sorted(CONF.glob("*.yaml")):
        cfg = yaml.safe_load(path.read_text()) or {}
        if list(cfg) == [path.stem] and isinstance(cfg[path.stem], dict) and "_target_" in cfg[path.stem]:
            out[path.stem] = cfg[path.stem]["_target_"]
    return out


METRICS = metric_files()
POPULATION = {n for n, t in METRICS.items()
              if next(iter(inspect.signature(get_method(t)).parameters)) == "representations"}
PER_RUN = sorted(set(METRICS) - POPULATION)

# small samples for the tests; (perfect-code bounds, constant-code bounds, invariant to per-latent rescaling)
SMALL = {
    "mig": dict(num_train=1000),
    "mig_chen": dict(num_samples=1024, max_points=None),
    "dci": dict(num_train=400, num_test=200, n_estimators=20),
    "sap": dict(num_train=1000, num_test=500),
    "modularity": dict(num_train=1000, num_test=500),
    "irs": dict(num_train=1000),
    "unsupervised": dict(num_train=1000),
    "beta_vae_score": dict(num_train=200, num_eval=100, batch_size=16),
    "factor_vae_score": dict(num_train=200, num_eval=100, batch_size=16, num_variance_estimate=500),
    "downstream_task": dict(num_train=(50, 200), num_test=200, n_estimators=10),
    "fairness": dict(num_train=500, num_test_points_per_class=10, n_estimators=10),
    "infomec": dict(num_train=1000),
}
PERFECT = {  # key: lowest value for the perfect code
    "mig": {"mig": 0.95}, "mig_chen": {"mig_chen": 0.9},
    "dci": {"dci_disentanglement": 0.9, "dci_completeness": 0.9, "dci_informativeness": 0.95},
    "sap": {"sap": 0.3}, "modularity": {"modularity": 0.95, "explicitness": 0.95}, "irs": {"irs": 0.95},
    "unsupervised": {}, "beta_vae_score": {"beta_vae_score": 0.95}, "factor_vae_score": {"factor_vae_score": 0.95},
    "downstream_task": {"downstream_task_200_mean_test_accuracy": 0.95}, "infomec": {"infom": 0.95, "infoc": 0.95,
                                                                                    "infoe": 0.95},
    "fairness": {},  # lower is fairer: a disentangled code scores 0 (tests/test_fairness.py)
}
CONSTANT = {  # key: highest value for a constant code
    "mig": {"mig": 1e-9}, "mig_chen": {"mig_chen": 0.01},  # Monte Carlo: different samples per entropy
    "dci": {"dci_disentanglement": 1e-6, "dci_completeness": 1e-6}, "sap": {"sap": 1e-9},
    "modularity": {"modularity": 1e-9, "explicitness": 0.5 + 1e-9}, "irs": {"irs": 1e-9},
    "unsupervised": {"gaussian_total_correlation": 1e-9, "gaussian_wasserstein_correlation": 1e-9,
                     "mutual_info_score": 1e-9},
    "beta_vae_score": {"beta_vae_score": 0.45},  # chance: the majority class of four
    "factor_vae_score": {"factor_vae_score": 1e-9, "factor_vae_num_active_dims": 0},
    "downstream_task": {"downstream_task_200_mean_test_accuracy": 0.35},  # chance: 1/8 to 1/4 per factor
    "fairness": {"fairness_max_tv_max_pred_max_sens": 1e-9}, "infomec": {"infom": 1e-9, "infoc": 1e-9, "infoe": 1e-6},
}
SCALE_FREE = {"mig", "mig_chen", "dci", "modularity", "factor_vae_score", "downstream_task", "fairness"}
# iterative solvers see permuted columns; boosted trees break ties in feature order; Chen's MIG
# draws z ~ q(z|x) column by column
PERM_TOL = {"beta_vae_score": 0.02, "modularity": 1e-4, "sap": 1e-9, "dci": 0.01, "mig_chen": 0.03,
            "downstream_task": 0.05, "fairness": 0.02}  # per-factor accuracies on 50-200 points; TVs of 10 points


def read_factors(x: np.ndarray) -> np.ndarray:
    """posX, posY, side length and intensity of the toy square, read off the picture (a perfect code)."""
    img = x[:, 0]
    on = img > 0
    cols, rows = on.any(1), on.any(2)
    return np.stack([cols.argmax(1), rows.argmax(1), cols.sum(1), img.max((1, 2))], 1).astype(float)


def as_encode(represent, logvar=-8.0):
    return lambda x: (represent(x), np.full((len(x), 4), logvar))


def noisy(x: np.ndarray) -> np.ndarray:
    """A partly entangled, noisy code (noise seeded by the picture, so the encoder is deterministic)."""
    f = read_factors(x)
    mix = np.array([[1, 0.3, 0, 0], [0, 1, 0.5, 0], [0.2, 0, 1, 0], [0, 0, 0.4, 1]])
    seed = int(x.sum() * 1000) % (2**32)
    return f @ mix + np.random.default_rng(seed).normal(0, 0.5, f.shape)


def score(name: str, represent, seed: int = 0, **knobs) -> dict[str, float]:
    fn = get_method(METRICS[name])
    arg = as_encode(represent) if list(inspect.signature(fn).parameters)[1] == "encode" else represent
    return fn(Toy(), arg, np.random.default_rng(seed), **{**SMALL[name], **knobs})


def test_every_metric_file_is_covered_and_named_after_its_function():
    assert {"mig", "mig_chen", "dci", "sap", "modularity", "irs", "unsupervised", "beta_vae_score",
            "factor_vae_score", "udr", "downstream_task", "fairness", "infomec"} <= set(METRICS)
    assert POPULATION == {"udr"}
    for name, target in METRICS.items():
        assert target.rsplit(".", 1)[1] == name, target
        assert name in SMALL or name in POPULATION, f"add {name} to this file's property tables"


def test_list_files_name_existing_metrics():
    listed = {}
    for stem in ("default", "fast", "all", "none"):
        cfg = yaml.safe_load((CONF / f"{stem}.yaml").read_text()) or {}
        listed[stem] = [d for d in cfg.get("defaults", []) if d != "_self_"]
        assert set(listed[stem]) <= set(PER_RUN), stem
        assert set(cfg) - {"defaults"} <= set(listed[stem]), f"{stem} sets knobs of metrics it does not list"
    assert set(listed["all"]) == set(PER_RUN) and listed["none"] == []
    assert set(listed["fast"]) <= set(listed["default"]) <= set(listed["all"])


@pytest.mark.parametrize("name", PER_RUN)
def test_signature_follows_the_contract(name):
    params = inspect.signature(get_method(METRICS[name])).parameters
    names = list(params)
    assert names[:3] in (["data", "represent", "rng"], ["data", "encode", "rng"])
    assert all(params[n].kind is inspect.Parameter.KEYWORD_ONLY and params[n].default is not inspect.Parameter.empty
               for n in names[3:]), "every knob keyword-only with a default"


@pytest.mark.parametrize("name", PER_RUN)
def test_perfect_and_constant_codes(name):
    good = score(name, read_factors)
    assert all(isinstance(k, str) and isinstance(v, float) and math.isfinite(v) for k, v in good.items()), good
    for key, low in PERFECT[name].items():
        assert good[key] >= low, (key, good)
    flat = score(name, lambda x: np.zeros((len(x), 4)))
    assert all(math.isfinite(v) for v in flat.values()), flat
    for key, high in CONSTANT[name].items():
        assert flat[key] <= high, (key, flat)


@pytest.mark.parametrize("name", PER_RUN)
def test_deterministic_and_invariant_to_permuting_latents(name):
    a = score(name, noisy, seed=5)
    assert score(name, noisy, seed=5) == a
    assert all(math.isfinite(v) for v in a.values())
    perm = [2, 0, 3, 1]
    b = score(name, lambda x: noisy(x)[:, perm], seed=5)
    for key in a:
        assert b[key] == pytest.approx(a[key], abs=PERM_TOL.get(name, 1e-9)), key


@pytest.mark.parametrize("name", sorted(SCALE_FREE))
def test_invariant_to_rescaling_latents(name):
    a = score(name, noisy, seed=6)
    scale, shift = np.array([3.0, 0.5, 7.0, 2.0]), np.array([1.0, -4.0, 0.0, 10.0])
    if name == "mig_chen":  # scale the posterior, not just its mean
        fn = get_method(METRICS[name])
        b = fn(Toy(), lambda x: (noisy(x) * scale + shift, np.full((len(x), 4), -8.0) + 2 * np.log(scale)),
               np.random.default_rng(6), **SMALL[name])
    else:
        b = score(name, lambda x: noisy(x) * scale + shift, seed=6)
    tol = {"modularity": 1e-4}.get(name, 1e-6)
    for key in a:
        assert b[key] == pytest.approx(a[key], abs=tol), key


def test_noise_scores_low():
    def rand(x):
        return np.random.default_rng(int(x.sum() * 1000) % (2**32)).normal(size=(len(x), 4))

    assert score("mig", rand)["mig"] < 0.05
    assert score("dci", rand)["dci_disentanglement"] < 0.2
    assert score("factor_vae_score", rand)["factor_vae_score"] < 0.6


def test_udr_is_one_for_a_permuted_sign_flipped_copy_and_ignores_dead_latents():
    from dislab.metrics.udr import udr

    rng = np.random.default_rng(0)
    data = Toy()
    m = data.index_to_factors(np.arange(len(data))).astype(float)  # the full grid: latents exactly uncorrelated
    kl = np.full(4, 0.5)
    copy = np.c_[m[:, [2, 0, 3, 1]] * [-1, 2, -0.5, 1] + 3, rng.normal(size=len(m))]  # + a dead, noisy latent
    runs = [{"means": m, "kl": kl, "eval_seed": 0}, {"means": copy, "kl": np.r_[kl, 0.001], "eval_seed": 0}]
    for r in udr(runs):
        # Spearman: |rho| = 1 on the matching pairs, 0 elsewhere. Lasso on standardised, orthogonal latents:
        # coefficients soft-thresholded by alpha, so a perfect match scores 1 - alpha (as in disentanglement_lib)
        assert r["udr_spearman"] == pytest.approx(1.0, abs=1e-9) and r["udr_lasso"] == pytest.approx(0.9, abs=1e-6)
    assert udr(runs, alpha=0.01)[0]["udr_lasso"] == pytest.approx(0.99, abs=1e-6)
    assert udr(runs) == udr(runs)
    mixed = [*runs, {"means": m @ rng.normal(size=(4, 4)), "kl": kl, "eval_seed": 0}]
    scores = udr(mixed)
    assert scores[2]["udr_spearman"] < 0.9 and all(0 <= v <= 1 for s in scores for v in s.values())
    every_dead = [{"means": m, "kl": np.zeros(4)}, {"means": m, "kl": kl}]
    assert udr(every_dead) == [{"udr_lasso": 0.0, "udr_spearman": 0.0}] * 2
    with pytest.raises(ValueError, match="eval_seed"):
        udr([{"means": m, "kl": kl, "eval_seed": 0}, {"means": m, "kl": kl, "eval_seed": 1}])


def test_shared_encoding_is_reused_only_while_the_encoder_is_unchanged():
    from dislab.metrics import _sampling

    calls, scale = [], [1.0]

    def represent(x):
        calls.append(len(x))
        return read_factors(x) * scale[0]

    data = Toy()
    a = _sampling.sample_codes(data, represent, 600, np.random.default_rng(1), 16, 256)
    n = len(calls)
    rng = np.random.default_rng(1)
    b = _sampling.sample_codes(data, represent, 600, rng, 16, 256)
    assert len(calls) == n + 1 and calls[-1] == 16  # one probe batch, no re-encoding
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    fresh = np.random.default_rng(1)
    _sampling.sample_codes(data, lambda x: read_factors(x), 600, fresh, 16, 256)
    assert rng.random() == fresh.random()  # the generator moved on as if it had drawn the sample
    scale[0] = 2.0  # "the weights moved"
    c = _sampling.sample_codes(data, represent, 600, np.random.default_rng(1), 16, 256)
    assert np.array_equal(c[0], 2 * a[0])


def test_parallel_fits_equal_serial_ones():
    from dislab.metrics.dci import dci_on_codes

    f = Toy().sample_factors(400, np.random.default_rng(0))
    x = f + np.random.default_rng(1).normal(0, 0.7, f.shape)
    kw = dict(n_estimators=10, random_state=3)
    assert dci_on_codes(x, f, n_jobs=1, **kw) == dci_on_codes(x, f, n_jobs=2, **kw)


def test_metrics_refuse_bad_knobs():
    with pytest.raises(ValueError):
        score("factor_vae_score", read_factors, batch_size=1)
    with pytest.raises(ValueError, match="exclude_factors"):
        score("mig_chen", read_factors, exclude_factors=["colour"])
    with pytest.raises(ValueError, match="NaN"):
        score("beta_vae_score", lambda x: np.full((len(x), 4), np.nan))


def test_compute_metrics_runs_the_listed_suite():
    """conf/metrics/all.yaml through Hydra, as training uses it (encode-type metrics get ``encode``)."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from dislab.evaluate import compute_metrics

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("all")
    metrics = {k: partial(v.func, **{**v.keywords, **SMALL[k]}) for k, v in instantiate(cfg).items()}

    class Model:
        represent = staticmethod(read_factors)
        encode = staticmethod(as_encode(read_factors))

    out = compute_metrics(metrics, Toy(), Model(), eval_seed=0)
    assert {"mig", "mig_chen", "dci_disentanglement", "sap", "modularity", "irs", "gaussian_total_correlation",
            "beta_vae_score", "factor_vae_score", "downstream_task_200_mean_test_accuracy",
            "fairness_mean_tv_mean_pred_mean_sens", "infom", "infoc", "infoe"} <= set(out)


def test_metric_settings_are_json_even_for_list_knobs():
    """A list knob set in the config (downstream_task's sizes, mig_chen's exclude_factors) reaches the
    metric as a ListConfig; the settings written to metrics.json must still be plain JSON."""
    import json

    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from dislab.evaluate import metric_settings

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("all", overrides=["+downstream_task.num_train=[10,100]", "+mig_chen.exclude_factors=[posX]"])
    settings = json.loads(json.dumps(metric_settings(instantiate(cfg))))
    assert settings["downstream_task"]["num_train"] == [10, 100] and settings["mig_chen"]["exclude_factors"] == ["posX"]
    assert settings["downstream_task"]["num_test"] == 5000 and settings["infomec"]["estimator"] == "ksg"
