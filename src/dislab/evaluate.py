"""Scoring a trained model: metrics, the evaluation representation, and the pictures; the untrained network's
scores, computed once per network, data set and metric settings (``untrained_scalars``)."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from dislab.data._device import draw, paint_device, render_rows
from dislab.objectives.gaussian import gaussian_kl

log = logging.getLogger("dislab")


def _reads_posterior(fn) -> bool:
    """Whether a metric partial takes ``encode`` (mean and log-variance) rather than ``represent``."""
    import inspect

    return list(inspect.signature(fn.func).parameters)[1] == "encode"


def check_posterior_metrics(model, metrics: dict) -> None:
    """Refuse, in one line, a metric that reads the posterior's variance (second parameter ``encode``,
    e.g. mig_chen) for a deterministic encoder (``stochastic = False``: AE, AAE, InfoGAN): its
    log-variance is untrained (or 0), and Chen et al.'s estimator needs the density q(z|x), which a point
    mass lacks (its continuous entropies are -inf). ``mig`` is the point-encoder form (histogram MI)."""
    from dislab.validate import ConfigError

    if getattr(model, "stochastic", True):
        return
    for name, fn in metrics.items():
        if _reads_posterior(fn):
            raise ConfigError(f"metric {name} needs the posterior's variance, which {type(model).__name__} lacks "
                              f"(a deterministic encoder, z = its mean): use mig, or drop it with ~metrics.{name}")


def compute_metrics(metrics: dict, data, model, eval_seed: int = 0, around=None) -> dict[str, float]:
    """Run each metric (a partial taking ``data, represent, rng``) with its own generator seeded by
    ``eval_seed``, so a metric's value does not depend on which others run. Flat keys. ``around(name,
    score)``, if given, is called for each metric that runs, and returns what ``score()`` (the metric's
    values) returns: a hook to show progress (``rescore``'s phase per metric).

    A metric whose second parameter is named ``encode`` gets ``model.encode`` (numpy x ->
    (mean, log-variance)) instead of ``model.represent`` (numpy x -> mean). On a data set without
    ground-truth factors (``has_factors`` False) the metrics that need them are skipped with a log
    line; those marked ``needs_factors = False`` (the unsupervised scores) still run. A deterministic
    encoder is refused by the metrics that need a posterior (``check_posterior_metrics``).
    """
    check_posterior_metrics(model, metrics)
    out: dict[str, float] = {}
    for name, fn in metrics.items():
        if not getattr(data, "has_factors", True) and getattr(fn.func, "needs_factors", True):
            log.warning("metric %s skipped: %s has no ground-truth factors", name, type(data).__name__)
            continue
        encode = model.encode if _reads_posterior(fn) else model.represent
        score = functools.partial(fn, data, encode, np.random.default_rng(eval_seed))
        out.update(around(name, score) if around else score())
    return out


def metric_settings(metrics: dict) -> dict[str, dict]:
    """Every knob each metric runs with: the function's defaults updated by the config's values, as plain
    (JSON-writable) values: a list knob set in the config arrives as an OmegaConf ``ListConfig``."""
    import inspect

    from omegaconf import Container, OmegaConf

    out = {}
    for name, fn in metrics.items():
        params = inspect.signature(fn.func).parameters.values()
        knobs = {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY}
        knobs.update(fn.keywords)
        out[name] = {"function": f"{fn.func.__module__}.{fn.func.__name__}",
                     **{k: OmegaConf.to_container(v) if isinstance(v, Container) else v for k, v in knobs.items()}}
    return out


def representation(model, data, num: int, eval_seed: int = 0, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Posterior means and per-latent mean KL on a fixed evaluation sample (what UDR needs), and
    ``stochastic``; a deterministic encoder (``stochastic = False``) has no posterior, so no ``kl``."""
    import torch

    stochastic = bool(getattr(model, "stochastic", True))
    rng = np.random.default_rng([eval_seed, 1])
    factors = data.sample_factors(num, rng)
    device = paint_device(data, getattr(model, "device", None))  # None: numpy images; else rendered on the model's GPU
    means, kls = [], []
    for s in range(0, num, batch_size):
        f = factors[s:s + batch_size]
        mu, logvar = model.encode(data.sample_observations_from_factors(f, rng) if device is None
                                  else data.render(f, rng, device))
        means.append(mu)
        kls.append(gaussian_kl(torch.from_numpy(mu), torch.from_numpy(logvar)).numpy())
    out = {"means": np.concatenate(means), "factors": factors, "eval_seed": np.int64(eval_seed),
           "stochastic": np.bool_(stochastic)}
    if stochastic:
        out["kl"] = np.concatenate(kls).mean(0)
    return out


def decomposition(model, data, num: int = 2000, eval_seed: int = 0, chunk: int = 256) -> dict[str, float]:
    """Chen et al. 2018, eq. 2, on a fixed evaluation sample treated as the data distribution:
    E KL(q(z|x)||p(z)) = I(x; z) + TC(z) + sum_d KL(q(z_d)||p(z_d)), each term estimated with
    log q(z_i) = logsumexp_n log q(z_i|x_n) - log num over the whole sample (exact for the
    sample's empirical distribution, so MI <= log num). One z ~ q(z|x) per point. Returns ``mi``,
    ``tc``, ``dwkl``, their sum ``kl_sampled``, the closed-form ``kl`` and ``kl_<d>`` per latent."""
    import math

    import torch

    from dislab.objectives.gaussian import gaussian_log_density

    rng = np.random.default_rng([eval_seed, 3])
    device = paint_device(data, getattr(model, "device", None))
    mus, lvs = [], []
    for s in range(0, num, 256):
        n = min(256, num - s)
        mu, lv = model.encode(data.sample_observations(n, rng) if device is None
                              else render_rows(data, draw(data, n, rng), device))
        mus.append(mu)
        lvs.append(lv)
    mu, lv = torch.from_numpy(np.concatenate(mus)).double(), torch.from_numpy(np.concatenate(lvs)).double()
    g = torch.Generator().manual_seed(eval_seed)
    z = mu + torch.randn(mu.shape, generator=g, dtype=mu.dtype) * (0.5 * lv).exp()
    log_qz, log_qzd = [], []
    for s in range(0, num, chunk):
        pair = gaussian_log_density(z[s:s + chunk, None], mu[None], lv[None])  # (c, num, D)
        log_qz.append(torch.logsumexp(pair.sum(2), 1) - math.log(num))
        log_qzd.append((torch.logsumexp(pair, 1) - math.log(num)).sum(1))
    log_qz, log_qzd = torch.cat(log_qz), torch.cat(log_qzd)
    log_qz_x = gaussian_log_density(z, mu, lv).sum(1)
    log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(1)
    kl_d = gaussian_kl(mu, lv).mean(0)
    out = {"mi": (log_qz_x - log_qz).mean(), "tc": (log_qz - log_qzd).mean(), "dwkl": (log_qzd - log_pz).mean(),
           "kl_sampled": (log_qz_x - log_pz).mean(), "kl": kl_d.sum()}
    out.update({f"kl_{i}": v for i, v in enumerate(kl_d)})
    return {k: float(v) for k, v in out.items()}


def evaluation_scalars(model, data, metrics: dict, eval_seed: int, num_decomposition: int,
                       prefix: str = "metrics") -> dict[str, float]:
    """``<prefix>/<key>`` for every metric and, for a model with a Gaussian posterior,
    ``decomposition/<term>`` (Chen et al.'s ELBO decomposition on a fixed sample, the same sample and
    size during training and at the end)."""
    out = {f"{prefix}/{k}": v for k, v in compute_metrics(metrics, data, model, eval_seed).items()}
    if num_decomposition and getattr(model, "stochastic", False):
        terms = decomposition(model, data, num_decomposition, eval_seed)
        out.update({f"decomposition/{k}": v for k, v in terms.items()})
    return out


def untrained_key(cfg, model, data, metrics: dict) -> dict:
    """What the untrained model's scores depend on: the network (its config, ``z_dim``, the data's image shape
    and the seed it was initialised with: ``build_model`` builds the net first, so every method of one seed
    starts from the same one), the data set's config, the metrics' settings, ``eval_seed``,
    ``num_decomposition``, and how the method reads the network (``encode``/``represent``, ``stochastic``).
    Not the method's other parts (a discriminator) nor its knobs: the scores never read them."""
    from omegaconf import OmegaConf

    cls = type(model)
    return {"net": OmegaConf.to_container(cfg.net, resolve=True), "z_dim": int(cfg.z_dim),
            "x_shape": list(data.x_shape), "seed": int(cfg.seed),
            "dataset": OmegaConf.to_container(cfg.dataset, resolve=True), "metrics": metric_settings(metrics),
            "eval_seed": int(cfg.eval_seed), "num_decomposition": int(cfg.num_decomposition),
            "reads": [cls.encode.__qualname__, cls.represent.__qualname__, bool(getattr(model, "stochastic", True))]}


def untrained_scalars(cfg, model, data, metrics: dict, cache_dir: Path | None = None) -> dict[str, float]:
    """``evaluation_scalars`` of the untrained ``model`` (built by ``build_model(cfg, data)`` right after
    seeding with ``cfg.seed``). With ``cache_dir`` (a sweep's ``untrained/``) they are computed once per
    ``untrained_key`` and kept in ``<cache_dir>/<sha256 of the key>.json`` (written atomically) for every job
    that shares the key. Scoring draws from its own generators only, never torch's global one, so whether
    the scores come from the cache does not change what is trained."""
    from dislab import atomic

    if cache_dir is None:
        return evaluation_scalars(model, data, metrics, cfg.eval_seed, cfg.num_decomposition)
    key = json.dumps(untrained_key(cfg, model, data, metrics), sort_keys=True, default=str)
    path = Path(cache_dir) / f"{hashlib.sha256(key.encode()).hexdigest()}.json"
    try:
        saved = json.loads(path.read_text())
        if json.dumps(saved["key"], sort_keys=True) == key:
            return {k: float(v) for k, v in saved["scalars"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not scored yet (or unreadable): scored now
    scalars = evaluation_scalars(model, data, metrics, cfg.eval_seed, cfg.num_decomposition)
    atomic.write_json(path, {"key": json.loads(key), "scalars": scalars})
    return scalars


def evaluate(run_dir, metrics: dict, eval_seed: int | None = None) -> dict[str, float]:
    """Score a run directory's checkpoint with ``metrics`` (name -> partial); flat keys."""
    from dislab.load import load_run

    model, cfg, data = load_run(run_dir)
    return compute_metrics(metrics, data, model, cfg.eval_seed if eval_seed is None else eval_seed)
