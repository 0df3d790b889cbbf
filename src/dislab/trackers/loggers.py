"""The trackers a run logs to (``conf/logger/``: W&B, TensorBoard, MLflow, CSV), built for its run directory
(``make_loggers``) with what each records as the run's config (``run_config``), the folder the runs under one
``outputs/`` share (``tracker_home``) and the line that opens each (``tracker_views``). A resumed run continues
its W&B run (by its id) and its MLflow run (its id in ``mlflow_run_id``)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import OmegaConf

from dislab import atomic
from dislab.conf import short_name
from dislab.evaluate import metric_settings
from dislab.lock import is_other_rank
from dislab.trackers.wandb import defaults as wandb_defaults
from dislab.trackers.wandb import run_id as wandb_run_id


def run_config(cfg, group: str) -> dict:
    """What every tracker records as the run's config: the resolved config (knobs such as beta, gamma, seed
    are top-level), the model and data set names, the sweep's (``group``), the metrics' settings, and where the
    data came from (``data``: procedural, or the file with its size and sha256; ``dislab.data.source``)."""
    from hydra.utils import get_class

    config = OmegaConf.to_container(cfg, resolve=True)
    config.update(model_name=short_name(cfg.model), dataset_name=short_name(cfg.dataset),
                  sweep=group, settings=_metric_settings(cfg),
                  data=get_class(cfg.dataset._target_).source_of(config["dataset"]))
    return config


def _metric_settings(cfg) -> dict:
    """Every knob (sample sizes...) of the final metrics (``metrics/<key>``) and of the estimates scored
    during training (``during/<key>``), as ``metrics.json`` records them."""
    return {"metrics": metric_settings(instantiate(cfg.metrics) or {}),
            "during": metric_settings(instantiate(cfg.metrics_during) or {})}


def make_loggers(cfg, run_dir: Path, name: str, group: str, beside_others: bool = False) -> list:
    """The configured loggers, writing under ``run_dir``, each holding ``run_config(cfg, group)``; the run is
    ``name`` in W&B and MLflow, in W&B's group ``group`` (MLflow's tag ``group``). ``beside_others``: this
    process holds other runs' loggers at the same time (a packed group): the W&B run is one of several
    (``reinit="create_new"``; ``finish_run`` ends it)."""
    loggers, zero = [], not is_other_rank()
    for node in (cfg.get("logger") or {}).values():
        kwargs, target = {"save_dir": str(run_dir)}, node._target_
        if "Wandb" in target:
            wandb_defaults()
            kwargs.update(name=name, group=group, config=run_config(cfg, group),
                          id=wandb_run_id(run_dir), resume="allow")  # a resumed run continues its W&B run
            if beside_others:
                kwargs.update(reinit="create_new")
        elif "TensorBoard" in target:
            kwargs.update(version="", default_hp_metric=False)  # <run>/tensorboard/, no placeholder hp_metric
        elif "MLFlow" in target:
            kwargs.update(run_name=name, tags={"group": group})
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
            _tensorboard_config(logger, run_config(cfg, group))
        elif "MLFlow" in target and zero:
            _mlflow_params(logger, run_config(cfg, group), run_dir, resumed=kwargs.get("run_id") is not None)
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
    atomic.write_text(run_dir / MLFLOW_RUN, logger.run_id + "\n")


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
