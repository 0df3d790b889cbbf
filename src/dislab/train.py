"""``run(cfg)``: seed, data, model, callbacks, loggers, trainer, fit; then score and write results.

A run directory ends up holding ``.hydra/`` (from Hydra), ``checkpoints/last.ckpt``,
``metrics.json``, ``history.csv``, ``representation.npz``, ``pictures/`` and, with the W&B
logger, ``wandb/``. Every file is written atomically.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from dislab import io, wandb_records
from dislab.conf import short_name
from dislab.evaluate import check_posterior_metrics, metric_settings, representation
from dislab.rundir import (
    CHECKPOINT,
    METRICS,
    RunDirRefused,
    accept,
    finished,
    identity,
    is_bookkeeping,
    job_log,
    override_key,
    resume_point,
    saved_config,
    versions,
    what_trained,
    write_hydra,
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


def _wandb_mode() -> None:
    """Offline unless WANDB_MODE says otherwise; online without credentials falls back to offline
    (with a warning) so nothing waits for a network or a login prompt."""
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    if os.environ["WANDB_MODE"] == "online" and not os.environ.get("WANDB_API_KEY"):
        netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
        if not (netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore")):
            log.warning("WANDB_MODE=online but no W&B credentials: logging offline (wandb sync uploads later)")
            os.environ["WANDB_MODE"] = "offline"


def _what_trained() -> list[str] | None:
    """This Hydra job's overrides that decide what it trains (``dislab.rundir.what_trained``); None without
    Hydra."""
    hc = _hydra()
    return None if hc is None else what_trained(hc.overrides.task)


def run_config(cfg) -> dict:
    """What every tracker records as the run's config: the resolved config (knobs such as beta, gamma, seed
    are top-level), the model, data set and sweep names, the metrics' settings, and where the data came from
    (``data``: procedural, or the file with its size and sha256; ``dislab.data.source``)."""
    from hydra.utils import get_class

    config = OmegaConf.to_container(cfg, resolve=True)
    config.update(model_name=short_name(cfg.model), dataset_name=short_name(cfg.dataset),
                  sweep=group_name(cfg), settings=_metric_settings(cfg),
                  data=get_class(cfg.dataset._target_).source_of(config["dataset"]))
    return config


def make_loggers(cfg, run_dir: Path) -> list:
    """The configured loggers, writing under ``run_dir``, each holding ``run_config(cfg)``."""
    from pytorch_lightning.utilities import rank_zero_only

    loggers, zero = [], rank_zero_only.rank == 0
    for node in (cfg.get("logger") or {}).values():
        kwargs, target = {"save_dir": str(run_dir)}, node._target_
        if "Wandb" in target:
            _wandb_mode()
            kwargs.update(name=run_name(cfg), group=group_name(cfg), config=run_config(cfg),
                          id=wandb_records.run_id(run_dir), resume="allow")  # a resumed run continues its W&B run
        elif "TensorBoard" in target:
            kwargs.update(version="", default_hp_metric=False)  # <run>/tensorboard/, no placeholder hp_metric
        elif "MLFlow" in target:
            kwargs.update(run_name=run_name(cfg), tags={"group": group_name(cfg)})
            if not node.get("tracking_uri"):  # one SQLite store for every run (MLflow 3 refuses its old file store)
                home = tracker_home(run_dir)
                kwargs.update(tracking_uri=f"sqlite:///{home}/mlflow.db", artifact_location=str(home / "mlartifacts"))
            if zero:  # the other DDP ranks' loggers log nothing
                uri = kwargs.get("tracking_uri") or node.tracking_uri
                _mlflow_experiment(uri, node.experiment_name,
                                   kwargs.get("artifact_location") or node.get("artifact_location"))
                kwargs.update(run_id=_mlflow_run(run_dir, uri))
        logger = instantiate(node, _partial_=True)(**kwargs)  # `config` clashes with instantiate
        if "TensorBoard" in target:
            _tensorboard_config(logger, run_config(cfg))
        elif "MLFlow" in target and zero:
            _mlflow_params(logger, run_config(cfg), run_dir, resumed=kwargs.get("run_id") is not None)
        loggers.append(logger)
    return loggers


def tracker_home(run_dir) -> Path:
    """What the trackers' runs share: MLflow's default store and TensorBoard's ``--logdir``. The run directory's
    nearest ancestor named ``outputs`` (``outputs/runs/<run>``, ``outputs/multirun/<sweep>/<job>``), else its
    parent; an absolute path."""
    run_dir = Path(os.path.abspath(run_dir))
    return next((p for p in run_dir.parents if p.name == "outputs"), run_dir.parent)


def tracker_views(loggers, run_dir: Path) -> list[str]:
    """The command (or, for an MLflow server, the page) that shows each tracker's runs, this one among them."""
    import shlex

    from pytorch_lightning.loggers import MLFlowLogger, TensorBoardLogger

    views = []
    for lg in loggers:
        if isinstance(lg, TensorBoardLogger):
            views.append(f"tensorboard --logdir {shlex.quote(str(tracker_home(run_dir)))}")
        elif isinstance(lg, MLFlowLogger):
            uri = lg.experiment.tracking_uri
            if uri.startswith(("http://", "https://")):
                views.append(f"{uri.rstrip('/')}/#/experiments/{lg.experiment_id}/runs/{lg.run_id}")
            elif not uri.startswith("databricks"):
                views.append(f"mlflow ui --backend-store-uri {shlex.quote(uri)}")
    return views


MLFLOW_RUN = "mlflow_run_id"


def _mlflow_params(logger, config: dict, run_dir: Path, resumed: bool) -> None:
    """The config as MLflow params (flat keys: ``model/_target_``), and the run's id in ``mlflow_run_id``. MLflow
    refuses to change a param, so a resumed run adds only those its first segment did not log (``sweep_name``
    keeps the time it was first run at)."""
    from lightning_fabric.utilities.logger import _flatten_dict

    params = _flatten_dict(config)
    if resumed:
        logged = logger.experiment.get_run(logger.run_id).data.params
        params = {k: v for k, v in params.items() if k not in logged}
    logger.log_hyperparams(params)
    io.write_text(run_dir / MLFLOW_RUN, logger.run_id + "\n")


def _mlflow_run(run_dir: Path, uri: str | None) -> str | None:
    """The MLflow run this run directory logged to before (its id in ``mlflow_run_id``), if the tracking store
    still holds it: a resumed run continues it, marked running again. None: a new run."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    saved = run_dir / MLFLOW_RUN
    if not saved.exists():
        return None
    rid, client = saved.read_text().strip(), MlflowClient(uri)
    try:
        client.get_run(rid)
    except MlflowException:  # another store, or the run was deleted there
        return None
    client.update_run(rid, status="RUNNING")
    return rid


def _mlflow_experiment(uri: str, name: str, artifact_location: str | None) -> None:
    """Open the store and create experiment ``name`` if it is missing. Jobs that start together take turns
    (a flock on a SQLite store's folder): MLflow builds a new SQLite store's tables without one, and two
    processes building them at once fail. Another job may still create the experiment first (on another host)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from dislab.lock import serialised

    folder = Path(uri.removeprefix("sqlite:///")).parent if uri.startswith("sqlite:///") else None
    with serialised(folder) if folder else contextlib.nullcontext():
        client = MlflowClient(uri)
        if client.get_experiment_by_name(name) is None:
            try:
                client.create_experiment(name, artifact_location=artifact_location)
            except MlflowException as e:
                if e.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise


def _tensorboard_config(logger, config: dict) -> None:
    """``hparams.yaml`` and the run's HParams summary (flat keys: ``model/_target_``). Lightning writes the summaries
    only with a metric, its placeholder ``hp_metric=-1`` by default; TensorBoard's HParams dashboard pairs these
    with the run's own scalars instead. Only the session's start: with no experiment summary in any run, TensorBoard
    builds the dashboard's columns from every run's knobs and scalars (it takes one run's experiment summary as the
    whole logdir's: that run's knobs only, and no metrics)."""
    from lightning_fabric.utilities.logger import _flatten_dict
    from torch.utils.tensorboard.summary import hparams

    logger.log_hyperparams(config)
    _, start, _ = hparams(logger._sanitize_params(_flatten_dict(config)), {})
    logger.experiment._get_file_writer().add_summary(start)


def _metric_settings(cfg) -> dict:
    """Every knob (sample sizes...) of the final metrics (``metrics/<key>``) and of the estimates scored
    during training (``during/<key>``), as ``metrics.json`` records them."""
    return {"metrics": metric_settings(instantiate(cfg.metrics) or {}),
            "during": metric_settings(instantiate(cfg.metrics_during) or {})}


def write_pictures(model, data, run_dir: Path, eval_seed: int, rep: dict, metrics: dict | None = None) -> dict:
    """pictures/ (``dislab.callbacks.pictures.write_pictures``); returns what ``log_pictures`` logs."""
    from dislab.callbacks.pictures import write_pictures as write

    return write(model, data, run_dir, eval_seed, rep, metrics)


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
        (run_dir / "error.txt").unlink(missing_ok=True)
        with job_log(run_dir, _hydra().job.name if _hydra() else "train"):
            return _train(cfg, run_dir, list(callbacks), extend=state == "extend")
    except BaseException as e:
        if not isinstance(e, (KeyboardInterrupt, RunDirRefused)):
            try:
                io.write_text(run_dir / "error.txt", f"{type(e).__name__}: {e}\n")
            except OSError:
                pass
        raise
    finally:
        lock.release()


def _train(cfg, run_dir: Path, extra_callbacks: list, extend: bool = False) -> dict[str, float]:
    import pytorch_lightning as pl
    from pytorch_lightning.utilities import rank_zero_only
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from dislab.callbacks.checkpoint import AtomicCheckpoint, Interrupted
    from dislab.callbacks.history import HistoryLogger
    from dislab.callbacks.metrics import MetricsDuringTraining, evaluation_scalars, log_scalars
    from dislab.callbacks.nan_guard import NanGuard
    from dislab.callbacks.pictures import log_pictures
    from dislab.callbacks.profiler import NoProfiler
    from dislab.callbacks.progress import ProgressBar
    from dislab.console import Console, interactive, quiet_library_noise, quiet_loggers
    from dislab.data.datamodule import GroundTruthDataModule
    from dislab.load import build_model
    from dislab.lock import is_other_rank
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
    hc = _hydra()
    explicit = hc is not None and any(o.lstrip("+").startswith("metrics=") for o in hc.overrides.task)
    validate_data(cfg, data, final_metrics, explicit)
    model = build_model(cfg, data, compile=bool(cfg.get("compile")))
    check_posterior_metrics(model, {**final_metrics, **during})  # before training, not after it
    dm = GroundTruthDataModule(data, cfg.batch_size, cfg.seed, pairs=getattr(model, "pairs", None))
    ckpt_path = run_dir / CHECKPOINT
    resume, budgets = bool(cfg.resume) and ckpt_path.exists(), [int(cfg.steps)]
    previous = saved_config(run_dir) if resume else None  # (read before it is rewritten)
    if not is_other_rank():  # the command is accepted and its input valid: the directory is this run's
        if extend and (run_dir / METRICS).exists():  # the shorter run's result, kept beside
            step = json.loads((run_dir / METRICS).read_text()).get("global_step")
            os.replace(run_dir / METRICS, run_dir / f"metrics.{step}.json")
        write_hydra(run_dir, cfg, _hydra())
    if resume:
        dm.start_step, before = resume_point(ckpt_path, cfg)
        before = before or [int((previous or cfg).steps)]  # a checkpoint from before budgets were kept
        budgets = before if before[-1] == cfg.steps else [*before, int(cfg.steps)]
        extended = f" ({' -> '.join(map(str, budgets))} steps: extended)" if len(budgets) > 1 else ""
        con.info("resuming %s from step %d%s", run_dir, dm.start_step, extended)

    history, loggers = HistoryLogger(run_dir / "history.csv"), []
    try:
        loggers = [history, *make_loggers(cfg, run_dir)]
        quiet_loggers(loggers)
        zero = rank_zero_only.rank == 0  # the global rank (SLURM_PROCID...)
        if zero:
            con.start(cfg, model, data, run_dir, name, final_metrics, during, loggers)
        if len(budgets) > 1 and budgets[-1] != budgets[-2] and dm.start_step:  # this segment extends the run
            log_scalars(loggers, {"train/budget": float(budgets[-1])}, dm.start_step)
        untrained = _metrics_only(history.rows.get(0, {})) if resume else {}  # resumed: its first segment's
        if cfg.eval_untrained and not resume and zero:
            with con.phase("untrained evaluation", ", ".join(final_metrics) or "ELBO decomposition"):
                scalars = evaluation_scalars(model, data, final_metrics, cfg.eval_seed, cfg.num_decomposition)
                log_scalars(loggers, scalars, 0)
            untrained = _metrics_only(scalars)
            if untrained:
                con.info("untrained: %s", ", ".join(f"{k} {v:.4f}" for k, v in untrained.items()))
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

        with con.phase("final evaluation", ", ".join(final_metrics) or "representation.npz"):
            scalars = evaluation_scalars(model, data, final_metrics, cfg.eval_seed, cfg.num_decomposition)
            values = _metrics_only(scalars)
            rep = representation(model, data, cfg.num_eval, cfg.eval_seed)
            io.write_npz(run_dir / "representation.npz", **rep)
        with con.phase("pictures", str(run_dir / "pictures")):
            pics = write_pictures(model, data, run_dir, cfg.eval_seed, rep, final_metrics)
        io.write_json(run_dir / "metrics.json", {
            "metrics": values, "untrained": untrained, "global_step": trainer.global_step,
            "decomposition": {k.split("/", 1)[1]: v for k, v in scalars.items() if k.startswith("decomposition/")},
            "settings": metric_settings(final_metrics), "versions": versions(), "overrides": _what_trained(),
            "budgets": budgets,
            "data": data.source(),
        })
        try:  # results are on disk: a logger failing now loses nothing
            log_scalars(loggers, scalars, trainer.global_step)
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
        wandb_records.finish()  # the W&B run file is complete when run() returns
