"""Scoring a trained model: metrics, the evaluation representation, and the pictures."""

from __future__ import annotations

import numpy as np

from dislab.objectives.gaussian import gaussian_kl


def compute_metrics(metrics: dict, data, represent, eval_seed: int = 0) -> dict[str, float]:
    """Run each metric (a partial taking ``data, represent, rng``) with its own generator seeded by
    ``eval_seed``, so a metric's value does not depend on which others run. Flat keys."""
    out: dict[str, float] = {}
    for _name, fn in metrics.items():
        out.update(fn(data, represent, np.random.default_rng(eval_seed)))
    return out


def metric_settings(metrics: dict) -> dict[str, dict]:
    """Every knob each metric runs with: the function's defaults updated by the config's values."""
    import inspect

    out = {}
    for name, fn in metrics.items():
        params = inspect.signature(fn.func).parameters.values()
        knobs = {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY}
        out[name] = {"function": f"{fn.func.__module__}.{fn.func.__name__}", **knobs, **fn.keywords}
    return out


def representation(model, data, num: int, eval_seed: int = 0, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Posterior means and per-latent KL on a fixed evaluation sample (what UDR needs)."""
    import torch

    rng = np.random.default_rng([eval_seed, 1])
    factors = data.sample_factors(num, rng)
    means, kls = [], []
    for s in range(0, num, batch_size):
        mu, logvar = model.encode(data.sample_observations_from_factors(factors[s:s + batch_size], rng))
        means.append(mu)
        kls.append(gaussian_kl(torch.from_numpy(mu), torch.from_numpy(logvar)).numpy())
    means, kl = np.concatenate(means), np.concatenate(kls)
    return {"means": means, "kl": kl.mean(0), "factors": factors, "eval_seed": np.int64(eval_seed)}
