"""``run(cfg)``: seed, data, model, callbacks, loggers, trainer, fit; then score and write results.

A run directory ends up holding ``.hydra/`` (from Hydra), ``checkpoints/last.ckpt``,
``metrics.json``, ``history.csv``, ``representation.npz``, ``pictures/`` and, with the W&B
logger, ``wandb/``. Every file is written atomically.
"""

from __future__ import annotations

import logging
import os
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from dislab import io
from dislab.evaluate import compute_metrics, metric_settings, representation
from dislab.viz.pictures import reconstructions, traversals

log = logging.getLogger("dislab")
PACKAGES = ("dislab", "torch", "pytorch-lightning", "hydra-core", "numpy", "scikit-learn", "wandb")


def versions() -> dict[str, str]:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


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
    """``<model>-<override>-<override>``, e.g. ``beta_tcvae-beta=6-seed=2``."""
    hc = _hydra()
    if hc is None:
        return Path(run_dir_of(cfg)).name
    model = hc.runtime.choices.get("model", "model")
    over = [o for o in hc.overrides.task if not o.startswith(("model=", "hydra.", "run_dir="))]
    return "-".join([model, *(o.lstrip("+~") for o in over)])


def group_name(cfg) -> str:
    if cfg.get("group"):
        return str(cfg.group)
    hc = _hydra()
    if hc is not None and hc.mode is not None and hc.mode.name == "MULTIRUN":
        return Path(hc.sweep.dir).name
    return hc.runtime.choices.get("model", "dislab") if hc else "dislab"


def make_loggers(cfg, run_dir: Path) -> list:
    loggers = []
    for _name, node in (cfg.get("logger") or {}).items():
        kwargs = {"save_dir": str(run_dir)}
        if "Wandb" in node._target_:
            os.environ.setdefault("WANDB_MODE", "offline")
            os.environ.setdefault("WANDB_SILENT", "true")
            kwargs.update(name=run_name(cfg), group=group_name(cfg),
                          config=OmegaConf.to_container(cfg, resolve=True))
        loggers.append(instantiate(node, _partial_=True)(**kwargs))  # `config` clashes with instantiate
    return loggers


def _finish_wandb():
    import sys

    if "wandb" in sys.modules:
        import wandb

        if wandb.run is not None:
            wandb.finish()


def write_pictures(model, data, run_dir: Path, eval_seed: int, loggers) -> None:
    x = data.sample_observations(8, np.random.default_rng([eval_seed, 2]))
    pics = {"traversals": traversals(model, x), "reconstructions": reconstructions(model, x)}
    for name, img in pics.items():
        io.write_png(run_dir / "pictures" / f"{name}.png", img)
    for lg in loggers:
        if hasattr(lg, "log_image"):
            lg.log_image(key="pictures/traversals", images=[pics["traversals"]])
            lg.log_image(key="pictures/reconstructions", images=[pics["reconstructions"]])


def run(cfg: DictConfig) -> dict[str, float]:
    """Train one model as configured; return its final metrics (flat keys)."""
    import pytorch_lightning as pl

    from dislab.callbacks.checkpoint import AtomicCheckpoint
    from dislab.callbacks.history import HistoryLogger
    from dislab.callbacks.metrics import MetricsDuringTraining, log_scalars
    from dislab.data.datamodule import GroundTruthDataModule

    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*IterableDataset.*__len__.*")
    run_dir = run_dir_of(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    pl.seed_everything(cfg.seed, workers=True, verbose=False)

    data = instantiate(cfg.dataset)
    net = instantiate(cfg.net, x_shape=data.x_shape, z_dim=cfg.z_dim)
    model = instantiate(cfg.model, net=net, optimizer=instantiate(cfg.optimizer), dataset_size=len(data))
    final_metrics, during = instantiate(cfg.metrics) or {}, instantiate(cfg.metrics_during) or {}

    history = HistoryLogger(run_dir / "history.csv")
    try:
        loggers = [history, *make_loggers(cfg, run_dir)]
        untrained = {}
        if cfg.eval_untrained and final_metrics:
            untrained = compute_metrics(final_metrics, data, model.represent, cfg.eval_seed)
            log_scalars(loggers, untrained, 0)
            log.info("untrained: %s", untrained)
        ckpt = AtomicCheckpoint(run_dir / "checkpoints" / "last.ckpt", cfg.checkpoint_every, history)
        callbacks = [ckpt, MetricsDuringTraining(during, data, cfg.metrics_every, cfg.eval_seed)]
        trainer = instantiate(cfg.trainer, max_steps=cfg.steps, logger=loggers, callbacks=callbacks,
                              default_root_dir=str(run_dir))
        trainer.fit(model, GroundTruthDataModule(data, cfg.batch_size, cfg.seed))
        ckpt.save(trainer)
        if not trainer.is_global_zero:
            return {}

        values = compute_metrics(final_metrics, data, model.represent, cfg.eval_seed)
        log_scalars(loggers, values, trainer.global_step)
        io.write_npz(run_dir / "representation.npz", **representation(model, data, cfg.num_eval, cfg.eval_seed))
        write_pictures(model, data, run_dir, cfg.eval_seed, loggers)
        io.write_json(run_dir / "metrics.json", {
            "metrics": values, "untrained": untrained, "global_step": trainer.global_step,
            "settings": metric_settings(final_metrics), "versions": versions(),
        })
        for lg in loggers:
            lg.finalize("success")
        log.info("final: %s", values)
        return values
    finally:
        history.flush()
        _finish_wandb()
