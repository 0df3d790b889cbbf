"""Scoring a trained model: metrics, the evaluation representation, and the pictures."""

from __future__ import annotations

import functools
import logging

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


def evaluate(run_dir, metrics: dict, eval_seed: int | None = None) -> dict[str, float]:
    """Score a run directory's checkpoint with ``metrics`` (name -> partial); flat keys."""
    from dislab.load import load_run

    model, cfg, data = load_run(run_dir)
    return compute_metrics(metrics, data, model, cfg.eval_seed if eval_seed is None else eval_seed)


def _rescore_summary(cfg, trained, ckpt, metrics: dict, seed: int, out_dir) -> list[tuple[str, str]]:
    """What ``rescore`` is about to do: the run (``trained``: its config), its checkpoint's step, the
    metrics, the eval seed (given, or the run's) and the output directory."""
    import torch

    from dislab.cli import model_knobs
    from dislab.console import _name

    step = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True).get("global_step")  # no tensor read
    kind = _name(trained.model._target_)
    knobs = ", ".join(f"{k}={trained.get(k)}" for k in model_knobs().get(kind, {}))
    whose = "the run's" if cfg.eval_seed is None else f"given; the run's is {trained.eval_seed}"
    return [("run dir", str(cfg.run)),
            ("model", f"{kind}{f' ({knobs})' if knobs else ''}, net {_name(trained.net._target_)}, "
                      f"z_dim {trained.z_dim}; data {_name(trained.dataset._target_)}"),
            ("checkpoint", str(ckpt) if step is None else f"step {step:,}: {ckpt}"),
            ("metrics", ", ".join(metrics) or "none"),
            ("eval seed", f"{seed} ({whose})"),
            ("output", str(out_dir))]


def rescore(cfg, out_dir) -> tuple[dict[str, float], object, bool]:
    """``eval.py``: score ``cfg.run``'s checkpoint with ``cfg.metrics`` on ``cfg.eval_seed`` (null: the
    run's own), write ``<out_dir>/metrics.json`` (values, settings, the eval_seed used, versions) and put
    the run's metrics into its W&B run (``rescore_to_wandb``), holding the run directory's lock meanwhile
    (one writer: not while it trains). Prints, through the ``dislab`` logger (so Hydra's job logging also
    writes ``<out_dir>/eval.log``), a summary, a phase with its duration for loading the checkpoint, each
    metric (then its values) and the W&B run, and where the results are; on a terminal also a bar over the
    metrics. Returns the values, the file written and whether a W&B run was written."""
    import time
    from pathlib import Path

    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from dislab import io
    from dislab.callbacks.progress import duration
    from dislab.console import Console, bar, interactive
    from dislab.load import load_run
    from dislab.lock import RunLock
    from dislab.rundir import versions
    from dislab.trackers.wandb import run_id
    from dislab.validate import validate

    validate(cfg)
    metrics = instantiate(cfg.metrics) or {}
    run_dir, out_dir, tty = Path(cfg.run), Path(out_dir), interactive()
    con = Console("" if tty else run_dir.name)
    with RunLock(run_dir):
        trained = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
        seed = trained.eval_seed if cfg.eval_seed is None else cfg.eval_seed
        ckpt = run_dir / "checkpoints" / "last.ckpt"
        con.rows(_rescore_summary(cfg, trained, ckpt, metrics, seed, out_dir))
        with con.phase("loading checkpoint", str(ckpt)):
            model, _, data = load_run(run_dir)

        with bar("scoring", len(metrics), tty) as progress:
            def scored(name, score):
                position = list(metrics).index(name) + 1
                progress.set_postfix_str(f"now {name}")
                with con.phase(name, f"metric {position} of {len(metrics)}"):
                    got = score()
                progress.update(position - progress.n)
                width = max(map(len, got), default=0)
                for k, v in got.items():
                    con.info("%s  %.4f", k.ljust(width), v)
                return got

            values = compute_metrics(metrics, data, model, seed, around=scored)
            progress.set_postfix_str("", refresh=False)  # the bar left behind: scoring n/n, the time it took
        out = out_dir / "metrics.json"
        io.write_json(out, {"metrics": values, "settings": metric_settings(metrics), "eval_seed": seed,
                            "versions": versions()})
        logged, wandb_run = False, run_id(run_dir)
        if wandb_run is not None:
            with con.phase("W&B", f"adding the metrics to run {wandb_run}"):
                logged = rescore_to_wandb(run_dir)
        con.info("done in %s; written to %s%s", duration(time.monotonic() - con.started), out,
                 " and to the run's W&B run (metrics/<key> in its summary)" if logged else "")
        return values, out, logged


def rescore_to_wandb(run_dir) -> bool:
    """Put a run's metrics as they stand after ``eval.py`` re-scores into its own W&B run (resumed by its
    id; none: nothing done): summary ``metrics/<key>`` = ``metrics.json``'s values updated by every
    ``eval/<time>/metrics.json`` in order (as ``sweep_summary.csv`` and the report read them), config
    ``rescores`` = each re-score's metrics with their settings and eval_seed. True if a W&B run was written."""
    import json
    from pathlib import Path

    from dislab.sweep.runs import rescores
    from dislab.trackers.wandb import add_to_runs, run_id

    if run_id(run_dir) is None:
        return False
    done = Path(run_dir) / "metrics.json"
    values = dict(json.loads(done.read_text()).get("metrics", {})) if done.exists() else {}
    record = {}
    for path, saved in rescores(run_dir):
        values.update(saved.get("metrics", {}))
        record[path.parent.name] = {"settings": saved.get("settings", {}), "eval_seed": saved.get("eval_seed")}
    summary = {f"metrics/{k}": v for k, v in values.items()}
    return bool(add_to_runs({Path(run_dir): summary}, config={"rescores": record}))
