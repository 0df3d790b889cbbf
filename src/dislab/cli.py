"""Command-line checks run before Hydra takes over, so a typo gets one clear line.

``python train.py model=vae beta=6`` would otherwise fail deep inside Hydra with
"Could not override 'beta' ... use +beta=6", which suggests the wrong fix: ``beta`` is a knob
of other models, not a key to append.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import sys
from pathlib import Path

from omegaconf import OmegaConf

CONF = Path(__file__).resolve().parents[2] / "conf"


def model_knobs(conf: Path = CONF) -> dict[str, dict]:
    """Top-level knobs each ``conf/model/<name>.yaml`` declares, with their YAML defaults (not the
    shared ones it may set, such as infogan's ``lr``)."""
    shared = set(OmegaConf.load(conf / "train.yaml")) | {"model", "defaults"}
    out = {}
    for p in sorted((conf / "model").glob("*.yaml")):
        node = OmegaConf.load(p)
        out[p.stem] = {k: node[k] for k in node if k not in shared}
    return out


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
        if o.is_sweep_override() and not list(o.sweep_string_iterator()):
            _fail(f"{o.input_line} expands to no value: the sweep would run zero jobs")
        if key.startswith("hydra") or o.is_delete() or o.is_add() or o.is_force_add():
            continue
        if key in groups or "@" in key or o.package:
            if key in groups:
                sweep = o.is_sweep_override()
                choices[key] = list(o.sweep_string_iterator()) if sweep else [o.get_value_element_as_str()]
        else:
            knobs.append(key)
    for group, values in choices.items():
        options = sorted(p.stem for p in (conf / group).glob("*.yaml"))
        for v in values:
            if v not in options and v != "null":
                _fail(f"{group}={v} is not known; allowed: {', '.join(options)}")
    if not knobs:
        return
    known_models = model_knobs(conf)
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
                    if "." in key:
                        _fail(f"'{key}' is not in the composed config; to pass an argument it does not list, "
                              f"write +{key}=... (see `python train.py --cfg job`)")
                    _fail(f"'{key}' is not a config key (model={model}, its knobs: {', '.join(mine)}); "
                          f"see `python train.py --cfg job`")


EXIT_CODES = {"ConfigError": 2, "NonFiniteError": 3, "Interrupted": 143}  # 143: as a process ended by SIGTERM


@contextlib.contextmanager
def report_errors():
    """Turn an anticipated failure into one line on stderr and a non-zero exit status (2: bad
    configuration or input; 3: non-finite loss; 143: stopped by SIGTERM after a checkpoint; 1: an I/O
    failure such as a full disk). Inside a Hydra multirun the error is re-raised instead, so Hydra
    records it and the sibling jobs go on."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.errors import InstantiationException

    try:
        yield
    except (ValueError, OSError, RuntimeError, InstantiationException) as e:
        cause = e.__cause__ if isinstance(e, InstantiationException) and e.__cause__ else e
        name = type(cause).__name__
        if name not in EXIT_CODES and not isinstance(cause, (ValueError, OSError)):
            raise
        if HydraConfig.initialized() and HydraConfig.get().mode.name == "MULTIRUN":
            raise
        if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
            msg = f"no space left on the device while writing {cause.filename or 'results'}"
        elif isinstance(cause, OSError) and cause.filename and cause.strerror:
            msg = f"{cause.strerror}: {cause.filename}"
        else:
            msg = str(cause).strip().splitlines()[0] if str(cause).strip() else name
        print(f"error: {msg}", file=sys.stderr)
        raise SystemExit(EXIT_CODES.get(name, 2 if isinstance(cause, ValueError) else 1)) from None
