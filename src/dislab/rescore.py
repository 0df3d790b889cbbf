"""``eval.py``: re-score a finished (or interrupted) run from its checkpoint, showing its work, and put the
run's metrics as they then stand into its W&B run. It conducts, as ``dislab.train.run`` does for training:
scoring itself is ``dislab.evaluate``."""

from __future__ import annotations

from dislab.evaluate import compute_metrics, metric_settings
from dislab.rundir import CHECKPOINT, CONFIG, HYDRA, METRICS


def _rescore_summary(cfg, trained, ckpt, metrics: dict, seed: int, out_dir) -> list[tuple[str, str]]:
    """What ``rescore`` is about to do: the run (``trained``: its config), its checkpoint's step, the
    metrics, the eval seed (given, or the run's) and the output directory."""
    import torch

    from dislab.conf import model_knobs, short_name

    step = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True).get("global_step")  # no tensor read
    kind = short_name(trained.model)
    knobs = ", ".join(f"{k}={trained.get(k)}" for k in model_knobs().get(kind, {}))
    whose = "the run's" if cfg.eval_seed is None else f"given; the run's is {trained.eval_seed}"
    return [("run dir", str(cfg.run)),
            ("model", f"{kind}{f' ({knobs})' if knobs else ''}, net {short_name(trained.net)}, "
                      f"z_dim {trained.z_dim}; data {short_name(trained.dataset)}"),
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

    from dislab import atomic
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
        trained = OmegaConf.load(run_dir / HYDRA / CONFIG)
        seed = trained.eval_seed if cfg.eval_seed is None else cfg.eval_seed
        ckpt = run_dir / CHECKPOINT
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
        out = out_dir / METRICS
        atomic.write_json(out, {"metrics": values, "settings": metric_settings(metrics), "eval_seed": seed,
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

    from dislab.rundir import rescores
    from dislab.trackers.wandb import add_to_runs, run_id

    if run_id(run_dir) is None:
        return False
    done = Path(run_dir) / METRICS
    values = dict(json.loads(done.read_text()).get("metrics", {})) if done.exists() else {}
    record = {}
    for path, saved in rescores(run_dir):
        values.update(saved.get("metrics", {}))
        record[path.parent.name] = {"settings": saved.get("settings", {}), "eval_seed": saved.get("eval_seed")}
    summary = {f"metrics/{k}": v for k, v in values.items()}
    return bool(add_to_runs({Path(run_dir): summary}, config={"rescores": record}))
