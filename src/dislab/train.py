"""``run(cfg)``: seed, data, model, callbacks, loggers, trainer, fit; then score and write results.

What the run directory holds and who may write it is ``dislab.rundir``'s; the trackers are ``dislab.trackers``'.
Every file is written atomically.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig

from dislab import atomic
from dislab.evaluate import (
    check_posterior_metrics,
    evaluation_scalars,
    metric_settings,
    representation,
    untrained_scalars,
)
from dislab.rundir import (
    CHECKPOINT,
    ERROR,
    HISTORY,
    METRICS,
    REPRESENTATION,
    RunDirRefused,
    accept,
    begin_segment,
    finished,
    identity,
    is_bookkeeping,
    job_log,
    override_key,
    versions,
    what_trained,
)

log = logging.getLogger("dislab")
def _hydra():
    return HydraConfig.get() if HydraConfig.initialized() else None


def run_dir_of(cfg) -> Path:
    if cfg.get("run_dir"):
        return Path(cfg.run_dir)
    hc = _hydra()
    if hc is None:
        raise ValueError("run_dir is not set and no Hydra run is active; pass run_dir=<directory>")
    return Path(hc.runtime.output_dir)


def run_name(cfg) -> str:
    """``<model>-<override>-<override>``, e.g. ``beta_tcvae-beta=6-seed=2``: the overrides that decide what is
    trained (``dislab.rundir.is_bookkeeping`` leaves out where and how it ran)."""
    hc = _hydra()
    if hc is None:
        return Path(run_dir_of(cfg)).name
    model = hc.runtime.choices.get("model", "model")
    over = [o for o in hc.overrides.task if override_key(o) != "model" and not is_bookkeeping(o)]
    return "-".join([model, *(o.lstrip("+~") for o in over)])


def group_name(cfg) -> str:
    if cfg.get("group"):
        return str(cfg.group)
    hc = _hydra()
    if hc is not None and hc.mode is not None and hc.mode.name == "MULTIRUN":
        return Path(hc.sweep.dir).name
    return hc.runtime.choices.get("model", "dislab") if hc else "dislab"


def _what_trained() -> list[str] | None:
    """This Hydra job's overrides that decide what it trains (``dislab.rundir.what_trained``); None without
    Hydra."""
    hc = _hydra()
    return None if hc is None else what_trained(hc.overrides.task)


def evaluation_device(trainer) -> torch.device:
    """Where a run's evaluations (untrained and final scores, representation.npz, pictures) run: the device
    the trainer trains on."""
    return trainer.strategy.root_device


def untrained_cache_dir(cfg) -> Path | None:
    """Where the jobs of a sweep keep the untrained networks' scores they share: ``<sweep dir>/untrained``;
    None (scored by the run itself) outside a sweep."""
    hc = _hydra()
    if hc is not None and hc.mode is not None and hc.mode.name == "MULTIRUN":
        return Path(hc.sweep.dir) / "untrained"
    return None


def write_pictures(model, data, run_dir: Path, eval_seed: int, rep: dict, metrics: dict | None = None) -> dict:
    """pictures/ (``dislab.pictures.write_pictures``); returns what ``log_pictures`` logs."""
    from dislab.pictures import write_pictures as write

    return write(model, data, run_dir, eval_seed, rep, metrics)


def write_results(cfg, run_dir: Path, model, data, final_metrics: dict, untrained: dict, step: int,
                  budgets: list[int], con, **extra) -> tuple[dict, dict, dict]:
    """A trained run's final evaluation, ``representation.npz``, pictures and ``metrics.json`` (``extra``: more
    of its fields, a packed group's); returns (final metrics, every scalar scored, the pictures to log)."""
    with con.phase("final evaluation", ", ".join(final_metrics) or "representation.npz"):
        scalars = evaluation_scalars(model, data, final_metrics, cfg.eval_seed, cfg.num_decomposition)
        values = _metrics_only(scalars)
        rep = representation(model, data, cfg.num_eval, cfg.eval_seed)
        atomic.write_npz(run_dir / REPRESENTATION, **rep)
    with con.phase("pictures", str(run_dir / "pictures")):
        pics = write_pictures(model, data, run_dir, cfg.eval_seed, rep, final_metrics)
    atomic.write_json(run_dir / METRICS, {
        "metrics": values, "untrained": untrained, "global_step": step,
        "decomposition": {k.split("/", 1)[1]: v for k, v in scalars.items() if k.startswith("decomposition/")},
        "settings": metric_settings(final_metrics), "versions": versions(), "overrides": _what_trained(),
        "budgets": budgets, "data": data.source(), **extra,
    })
    return values, scalars, pics


def metrics_chosen() -> bool:
    """Whether this Hydra job's command line chose ``metrics=`` (``dislab.validate.validate_data``)."""
    hc = _hydra()
    return hc is not None and any(o.lstrip("+").startswith("metrics=") for o in hc.overrides.task)


def _metrics_only(scalars: dict) -> dict[str, float]:
    return {k.split("/", 1)[1]: v for k, v in scalars.items() if k.startswith("metrics/")}


def objective(cfg, metrics: dict[str, float]):
    """The job's return value: ``metrics``, or under ``sweeper=optuna`` the one named by ``objective`` (the
    sweeper takes a number)."""
    name = cfg.get("objective")
    if not name:
        return metrics
    if name not in metrics:
        from dislab.validate import ConfigError

        raise ConfigError(f"objective={name} is not among this run's final metrics ({', '.join(sorted(metrics))}); "
                          f"choose one of them or add its metric (metrics=...)")
    return float(metrics[name])


def run(cfg: DictConfig, callbacks: tuple = ()) -> dict[str, float]:
    """Train one model as configured; return its final metrics (flat keys). ``callbacks`` join the trainer's.

    A run directory that already holds ``metrics.json`` is complete: its metrics are returned
    without training. One that holds ``checkpoints/last.ckpt`` is resumed (``resume=true``, the
    default). Either is refused in one line (``RunDirRefused``) when this command's settings differ from
    those the directory was trained with (``dislab.rundir.settings``), except a larger ``steps`` with
    ``extend=true``, which trains the run on. A refused command writes nothing. On failure ``error.txt``
    records the error in one line, and the error propagates. A directory that another live process writes
    is refused in one line (``dislab.lock``).
    """
    from dislab.lock import RunLock
    from dislab.validate import ConfigError, validate

    validate(cfg)
    run_dir = run_dir_of(cfg)
    if accept(cfg, run_dir, _what_trained()) == "done":  # read-only: a finished run is returned, no lock taken
        return finished(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot write the output directory {run_dir}: {e.strerror}") from None
    lock = RunLock(run_dir).acquire()  # one writer: a second process is refused, naming the holder
    try:
        state = accept(cfg, run_dir, _what_trained())  # again, now that no other process writes it
        if state == "done":
            return finished(run_dir)
        (run_dir / ERROR).unlink(missing_ok=True)
        with job_log(run_dir, _hydra().job.name if _hydra() else "train"):
            return _train(cfg, run_dir, list(callbacks), extend=state == "extend")
    except BaseException as e:
        if not isinstance(e, (KeyboardInterrupt, RunDirRefused)):
            try:
                atomic.write_text(run_dir / ERROR, f"{type(e).__name__}: {e}\n")
            except OSError:
                pass
        raise
    finally:
        lock.release()


def _train(cfg, run_dir: Path, extra_callbacks: list, extend: bool = False) -> dict[str, float]:
    import pytorch_lightning as pl
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from dislab.callbacks.checkpoint import AtomicCheckpoint, Interrupted
    from dislab.callbacks.history import HistoryLogger
    from dislab.callbacks.metrics import MetricsDuringTraining
    from dislab.callbacks.nan_guard import NanGuard
    from dislab.callbacks.profiler import NoProfiler
    from dislab.callbacks.progress import ProgressBar
    from dislab.console import Console, interactive, quiet_library_noise, quiet_loggers
    from dislab.data.datamodule import GroundTruthDataModule
    from dislab.load import build_model
    from dislab.lock import is_other_rank
    from dislab.trackers.log import log_final, log_pictures, log_scalars
    from dislab.trackers.loggers import make_loggers, tracker_views
    from dislab.trackers.wandb import finish as finish_wandb
    from dislab.validate import validate_data

    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*IterableDataset.*__len__.*")
    warnings.filterwarnings("ignore", ".*overridden `transfer_batch_to_device`.*")  # VAE's, on purpose
    quiet_library_noise()
    tty, name = interactive(), run_name(cfg)
    con = Console("" if tty else name)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    pl.seed_everything(cfg.seed, workers=True, verbose=False)

    data = instantiate(cfg.dataset)
    final_metrics, during = instantiate(cfg.metrics) or {}, instantiate(cfg.metrics_during) or {}
    validate_data(cfg, data, final_metrics, metrics_chosen())
    model = build_model(cfg, data, compile=bool(cfg.get("compile")))
    check_posterior_metrics(model, {**final_metrics, **during})  # before training, not after it
    dm = GroundTruthDataModule(data, cfg.batch_size, cfg.seed, pairs=getattr(model, "pairs", None))
    ckpt_path = run_dir / CHECKPOINT
    resume = bool(cfg.resume) and ckpt_path.exists()
    dm.start_step, budgets = begin_segment(run_dir, cfg, _hydra(), extend, writer=not is_other_rank())
    if resume:
        extended = f" ({' -> '.join(map(str, budgets))} steps: extended)" if len(budgets) > 1 else ""
        con.info("resuming %s from step %d%s", run_dir, dm.start_step, extended)

    history, loggers = HistoryLogger(run_dir / HISTORY), []
    try:
        loggers = [history, *make_loggers(cfg, run_dir, name, group_name(cfg))]
        quiet_loggers(loggers)
        zero = not is_other_rank()  # the global rank zero (RANK, LOCAL_RANK, NODE_RANK, SLURM_PROCID)
        if zero:
            con.start(cfg, model, data, run_dir, name, final_metrics, during, loggers)
        if len(budgets) > 1 and budgets[-1] != budgets[-2] and dm.start_step:  # this segment extends the run
            log_scalars(loggers, {"train/budget": float(budgets[-1])}, dm.start_step)
        guard = NanGuard(cfg.nan_policy)
        ckpt = AtomicCheckpoint(ckpt_path, cfg.checkpoint_every, history, identity(cfg), guard, budgets)
        during_cb = MetricsDuringTraining(during, data, cfg.metrics_every, cfg.eval_seed, cfg.num_decomposition, guard)
        callbacks = [ckpt, guard, during_cb, *extra_callbacks]
        if cfg.trainer.get("enable_progress_bar", True):
            callbacks.append(ProgressBar(name, interactive=tty))
        lean = {} if cfg.trainer.get("profiler") else {"profiler": NoProfiler()}  # unless one is asked for
        trainer = instantiate(cfg.trainer, max_steps=cfg.steps, logger=loggers, callbacks=callbacks,
                              default_root_dir=str(run_dir), **lean,
                              enable_model_summary=cfg.trainer.get("enable_model_summary", False))  # con.start's
        device = evaluation_device(trainer)
        untrained = _metrics_only(history.rows.get(0, {})) if resume else {}  # resumed: its first segment's
        if cfg.eval_untrained and not resume and zero:
            with con.phase("untrained evaluation", ", ".join(final_metrics) or "ELBO decomposition"):
                scalars = untrained_scalars(cfg, model.to(device), data, final_metrics, untrained_cache_dir(cfg))
                log_scalars(loggers, scalars, 0)
            untrained = _metrics_only(scalars)
            if untrained:
                con.info("untrained: %s", ", ".join(f"{k} {v:.4f}" for k, v in untrained.items()))
        try:
            with con.phase("training", f"{cfg.steps:,} steps"):
                trainer.fit(model, dm, ckpt_path=ckpt_path if resume else None, weights_only=True)
        except SIGTERMException:
            raise Interrupted(f"SIGTERM at step {trainer.global_step}: checkpoint saved to {ckpt_path}; "
                              f"re-run the same command to resume") from None
        ckpt.save(trainer)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()  # for in-process callers running more jobs
        if not trainer.is_global_zero:
            return {}

        model.to(device)  # Lightning's teardown has moved it to the CPU
        values, scalars, pics = write_results(cfg, run_dir, model, data, final_metrics, untrained,
                                              trainer.global_step, budgets, con)
        try:  # results are on disk: a logger failing now loses nothing
            log_final(loggers, scalars, untrained, trainer.global_step)
            log_pictures(loggers, pics, trainer.global_step)
            for lg in loggers:
                lg.finalize("success")
        except Exception as e:
            log.warning("a logger failed after the results were written: %s", e)
        con.end(run_dir, values, untrained, pics, tracker_views(loggers, run_dir))
        return values
    except BaseException:  # Lightning marks the loggers failed when fit() fails; this covers what follows it
        for lg in loggers:
            try:
                lg.finalize("failed")
            except Exception:
                pass
        raise
    finally:
        history.flush()
        finish_wandb()  # the W&B run file is complete when run() returns
