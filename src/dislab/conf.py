"""Config knowledge: where ``conf/`` is, the knobs each model declares, and the one word a target stands for.

One word, one thing: ``dislab.<package>.<name>.<Object>`` is the option ``<name>`` of the config group (the YAML
stem, the module stem, the name in ``metrics.json``). Nothing here imports torch, Lightning or Hydra.
"""

from __future__ import annotations

import functools
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

CONF = Path(__file__).resolve().parents[2] / "conf"


@functools.lru_cache(maxsize=None)
def model_knobs(conf: Path = CONF) -> dict[str, dict]:
    """Top-level knobs each ``conf/model/<name>.yaml`` declares, with their YAML defaults (not the
    shared ones it may set, such as infogan's ``lr``)."""
    shared = set(OmegaConf.load(conf / "train.yaml")) | {"model", "defaults"}
    out = {}
    for p in sorted((conf / "model").glob("*.yaml")):
        node = OmegaConf.load(p)
        out[p.stem] = {k: node[k] for k in node if k not in shared}
    return out


def target_name(node) -> str | None:
    """``dislab.<package>.<name>.<Object>`` (the target, or a config node holding it as ``_target_``) ->
    ``<name>``; None for any other target."""
    target = node.get("_target_") if isinstance(node, (dict, DictConfig)) else node
    parts = target.split(".") if isinstance(target, str) else []
    return parts[2] if len(parts) >= 4 and parts[0] == "dislab" else None


def short_name(node) -> str:
    """``target_name``, or the target as it is where it is not dislab's (somebody's own class)."""
    target = node.get("_target_") if isinstance(node, (dict, DictConfig)) else node
    return target_name(target) or str(target or "?")
