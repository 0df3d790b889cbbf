"""Command-line checks run before Hydra takes over, so a typo gets one clear line.

``python train.py model=vae beta=6`` would otherwise fail deep inside Hydra with
"Could not override 'beta' ... use +beta=6", which suggests the wrong fix: ``beta`` is a knob
of other models, not a key to append.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

from omegaconf import OmegaConf

CONF = Path(__file__).resolve().parents[2] / "conf"


def model_knobs(conf: Path = CONF) -> dict[str, set[str]]:
    """Top-level knobs each ``conf/model/<name>.yaml`` declares."""
    return {p.stem: {k for k in OmegaConf.load(p) if k not in ("model", "defaults")}
            for p in sorted((conf / "model").glob("*.yaml"))}


def _fail(msg: str):
    print(f"error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def check_overrides(argv: list[str] | None = None, conf: Path = CONF, config_name: str = "train") -> None:
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser

    args = [a for a in (sys.argv[1:] if argv is None else argv) if "=" in a and not a.startswith("-")]
    try:
        overrides = OverridesParser.create().parse_overrides(args)
    except Exception:  # let Hydra report its own syntax errors
        return
    groups = {p.name for p in conf.iterdir() if p.is_dir()}
    choices, knobs = {}, []
    for o in overrides:
        key = o.key_or_group
        if key.startswith("hydra") or o.is_delete() or o.is_add() or o.is_force_add():
            continue
        if key in groups or "@" in key or o.package:
            if key in groups:
                sweep = o.is_sweep_override()
                choices[key] = list(o.sweep_string_iterator()) if sweep else [o.get_value_element_as_str()]
        else:
            knobs.append(key)
    if not knobs:
        return
    known_models = model_knobs(conf)
    for name in choices.get("model", []):
        if name not in known_models:
            _fail(f"model={name} is not a model; allowed: {', '.join(known_models)}")
    combos = list(itertools.product(*[[f"{g}={v}" for v in vs] for g, vs in choices.items()]))[:16]
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        for combo in combos:
            try:
                cfg = compose(config_name, overrides=list(combo))
            except Exception:  # an unknown option etc.: Hydra's own message is clear
                return
            for key in knobs:
                if OmegaConf.select(cfg, key, default="__missing__") == "__missing__":
                    model = cfg.model._target_.rsplit(".", 1)[0].rsplit(".", 1)[-1]
                    owners = [m for m, ks in known_models.items() if key.split(".")[0] in ks]
                    mine = sorted(known_models.get(model, ())) or ["none"]
                    if owners:
                        _fail(f"model={model} has no knob '{key}' (its knobs: {', '.join(mine)}); "
                              f"'{key}' is a knob of: {', '.join(owners)}")
                    _fail(f"'{key}' is not a config key (model={model}, its knobs: {', '.join(mine)}); "
                          f"see `python train.py --cfg job`")
