"""Command-line checks run before Hydra takes over, so a typo gets one clear line and nothing
is written (Hydra creates the run directory and its ``.hydra/`` before the task runs).

``python train.py model=vae beta=6`` would otherwise fail deep inside Hydra with
"Could not override 'beta' ... use +beta=6", which suggests the wrong fix: ``beta`` is a knob
of other models, not a key to append. Values are checked by ``dislab.validate``.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import sys
from pathlib import Path

from omegaconf import OmegaConf

from dislab.conf import CONF, model_knobs, short_name


def _fail(msg: str):
    print(f"error: {msg}", file=sys.stderr)
    raise SystemExit(2)


OTHER_CONFIG = ("--config-name", "-cn", "--config-path", "-cp", "--config-dir", "-cd")
NO_RUN = ("--help", "-h", "--hydra-help", "--info", "-i", "--shell-completion", "-sc")


def check_overrides(argv: list[str] | None = None, conf: Path = CONF, config_name: str = "train") -> None:
    """Before Hydra creates or writes anything: an option a group lacks, a knob the model lacks, a bad
    value of any knob (each value of a sweep) and, for one run, a run directory another process
    writes each end the program with one line (exit status 2; 4 for a directory in use)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser

    argv = sys.argv[1:] if argv is None else list(argv)
    if any(a.split("=", 1)[0] in OTHER_CONFIG + NO_RUN for a in argv):
        return  # another config (Hydra and run() check it), or help
    args = [a for a in argv if "=" in a and not a.startswith("-")]
    try:
        overrides = OverridesParser.create().parse_overrides(args)
    except Exception:  # let Hydra report its own syntax errors
        return
    groups = {p.name for p in conf.iterdir() if p.is_dir()}
    choices, knobs, values = {}, [], []
    for o in overrides:
        key = o.key_or_group
        try:
            if o.is_sweep_override() and not list(o.sweep_string_iterator()):
                _fail(f"{o.input_line} expands to no value: the sweep would run zero jobs")
        except SystemExit:
            raise
        except Exception:  # an interval sweep (a sweeper plugin's): not enumerable
            pass
        if key.startswith("hydra") or o.is_delete():
            continue
        if key in groups or o.package:
            if key in groups and not (o.is_add() or o.is_force_add()):
                sweep = o.is_sweep_override()
                choices[key, o.get_key_element()] = list(o.sweep_string_iterator()) if sweep \
                    else [o.get_value_element_as_str()]
            continue
        if not (o.is_add() or o.is_force_add()):
            knobs.append(key)
        try:
            values.append((o, list(o.sweep_iterator()) if o.is_sweep_override() else [o.value()]))
        except Exception:  # an interval sweep: its values are the sweeper's to draw
            pass
    for (group, _), options_given in choices.items():
        options = sorted(p.stem for p in (conf / group).glob("*.yaml"))
        for given in options_given:  # a list of options (metrics=[mig,sap]) names each one
            for v in given[1:-1].split(",") if given.startswith("[") and given.endswith("]") else [given]:
                if v.strip() not in options and v != "null":
                    _fail(f"{group}={v.strip()} is not known; allowed: {', '.join(options)}")
    if not overrides and config_name == "train":
        return  # the defaults are valid
    multirun = bool({"-m", "--multirun"} & set(argv)) or any(g in ("sweep", "sweeper") for g, _ in choices) \
        or any(o.key_or_group == "hydra.mode" and "MULTIRUN" in str(o.value()) for o in overrides
               if not o.is_sweep_override())
    combos = list(itertools.product(*[[f"{k}={v}" for v in vs] for (_, k), vs in choices.items()]))[:16]
    first = None
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        for combo in combos:
            try:
                cfg = compose(config_name, overrides=list(combo))
            except Exception:  # an unknown option etc.: Hydra's own message is clear
                return
            if "model" in cfg:
                _check_knobs_exist(cfg, knobs, conf)
            for variant in _variants(cfg, values):
                _validate(variant, files=not multirun)
                first = variant if first is None else first
    if first is not None and not multirun:
        _check_run_dir_free(first, overrides)


def _variants(cfg, values: list):
    """``cfg`` with each override's first value, then once for each further value of a sweep."""
    import copy

    def put(c, o, v):
        OmegaConf.update(c, o.key_or_group, v, merge=True, force_add=o.is_add() or o.is_force_add())

    base = copy.deepcopy(cfg)
    try:
        for o, vs in values:
            put(base, o, vs[0])
    except Exception:  # Hydra will refuse this override in its own words
        return
    yield base
    for o, vs in values:
        for v in vs[1:]:
            c = copy.deepcopy(base)
            put(c, o, v)
            yield c


def _validate(cfg, files: bool) -> None:
    from dislab.validate import ConfigError, validate

    try:
        validate(cfg, files=files)
    except ConfigError as e:
        _fail(str(e))


def _check_run_dir_free(cfg, overrides) -> None:
    """A run directory given on the command line that a live process writes: exit status 4."""
    from dislab.lock import RunDirInUse, check_free, is_other_rank

    if is_other_rank():  # a DDP rank that Lightning or SLURM started: part of rank 0's run
        return
    run_dir = cfg.get("run_dir") if "model" in cfg else None
    given = [o.value() for o in overrides if o.key_or_group == "hydra.run.dir" and not o.is_sweep_override()]
    if not run_dir and given and "${" not in str(given[-1]):
        run_dir = given[-1]
    if run_dir:
        try:
            check_free(run_dir)
        except RunDirInUse as e:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(EXIT_CODES["RunDirInUse"]) from None


def _check_knobs_exist(cfg, knobs: list[str], conf: Path) -> None:
    known_models = model_knobs(conf)
    for key in knobs:
        if OmegaConf.select(cfg, key, default="__missing__") == "__missing__":
            model = short_name(cfg.model)
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


EXIT_CODES = {"ConfigError": 2, "RunDirRefused": 2, "NonFiniteError": 3, "RunDirInUse": 4,
              "Interrupted": 143}  # 143: as a process ended by SIGTERM


@contextlib.contextmanager
def report_errors():
    """Turn an anticipated failure into one line on stderr and a non-zero exit status (2: bad
    configuration or input; 3: non-finite loss; 4: the run directory is in use by another process;
    143: stopped by SIGTERM after a checkpoint; 1: an I/O failure such as a full disk). Inside a Hydra
    multirun the error is re-raised instead, so Hydra records it and the sibling jobs go on."""
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
