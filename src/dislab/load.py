"""Rebuild a finished (or interrupted) run's model from its directory: ``.hydra/config.yaml`` plus
``checkpoints/last.ckpt``, loaded with ``weights_only=True``."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from dislab.rundir import CHECKPOINT, CONFIG, HYDRA
from dislab.validate import ConfigError

CUDAGRAPH_MODES = ("reduce-overhead", "max-autotune")


def build_model(cfg, data, compile: bool = False):
    """The run's model for ``data``: net, method and optimizer from ``cfg``; convolution weights
    in channels_last (NHWC) layout when ``cfg.channels_last`` (inputs follow the weights' layout);
    ``compile``: the training step runs compiled by torch.compile in ``cfg.compile_mode`` (its losses
    with their backward and the optimizer's update: ``VAE.training_step``; parameter names and checkpoints
    unchanged); reduce-overhead and max-autotune replay it as CUDA graphs on a GPU."""
    net = instantiate(cfg.net, x_shape=data.x_shape, z_dim=cfg.z_dim)
    model = instantiate(cfg.model, net=net, optimizer=instantiate(cfg.optimizer), dataset_size=len(data))
    if cfg.get("channels_last"):
        model = model.to(memory_format=torch.channels_last)
    if compile:
        mode = model.compile_mode = cfg.get("compile_mode") or "default"
        model.cudagraphs = mode in CUDAGRAPH_MODES
    return model


def load_run(run_dir) -> tuple:
    """Returns (model in eval mode, cfg, data)."""
    run_dir = Path(run_dir)
    cfg_path, ckpt = run_dir / HYDRA / CONFIG, run_dir / CHECKPOINT
    for p in (cfg_path, ckpt):
        if not p.exists():
            raise ConfigError(f"{run_dir} is not a dislab run directory: {p.relative_to(run_dir)} is missing")
    cfg = OmegaConf.load(cfg_path)
    data = instantiate(cfg.dataset)
    model = build_model(cfg, data)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ConfigError(f"{ckpt} does not fit the model of {cfg_path}: {str(e).splitlines()[0]}") from None
    return model.eval(), cfg, data
