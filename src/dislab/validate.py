"""Check a composed config before any work starts: one clear line for each bad value."""

from __future__ import annotations

import numbers

from dislab.cli import model_knobs


class ConfigError(ValueError):
    """A bad value in the run's configuration (reported in one line, exit status 2)."""


def _positive_int(cfg, key):
    v = cfg.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
        raise ConfigError(f"{key}={v!r} is not allowed; {key} must be a positive integer")


def _number(name, v, minimum=0.0, strict=False):
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or v != v or (v <= minimum if strict else v < minimum):
        rel = ">" if strict else ">="
        raise ConfigError(f"{name}={v!r} is not allowed; {name} must be a number {rel} {minimum:g}")


def validate(cfg) -> None:
    """Raise ConfigError naming the bad value and what is allowed."""
    for key in ("steps", "z_dim", "batch_size"):
        _positive_int(cfg, key)
    for key in ("metrics_every", "checkpoint_every", "num_eval", "seed", "eval_seed"):
        v = cfg.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ConfigError(f"{key}={v!r} is not allowed; {key} must be an integer >= 0")
    _number("lr", cfg.get("lr"), 0.0, strict=True)
    for key in ("channels_last", "compile", "eval_untrained", "resume"):
        if not isinstance(cfg.get(key, False), bool):
            raise ConfigError(f"{key}={cfg.get(key)!r} is not allowed; use true or false")
    modes = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
    if cfg.get("compile_mode", "default") not in modes:
        raise ConfigError(f"compile_mode={cfg.get('compile_mode')!r} is not allowed; use one of {', '.join(modes)}")
    if cfg.get("nan_policy") not in ("stop", "skip"):
        raise ConfigError(f"nan_policy={cfg.get('nan_policy')!r} is not allowed; use stop or skip")
    model = cfg.model._target_.split(".")[2]
    for knob, default in model_knobs().get(model, {}).items():
        if isinstance(default, numbers.Real) and not isinstance(default, bool):
            _number(knob, cfg.get(knob))  # beta, gamma, lambda...: numbers >= 0


def validate_data(cfg, data, metrics: dict, explicit_metrics: bool) -> None:
    """``explicit_metrics``: the user chose ``metrics=...`` rather than taking the default list."""
    import inspect

    if cfg.batch_size > len(data):
        raise ConfigError(f"batch_size={cfg.batch_size} is larger than the data set ({len(data)} points)")
    for name, fn in metrics.items():
        if next(iter(inspect.signature(fn.func).parameters)) == "representations":
            raise ConfigError(f"{name} is scored across the seeds of a sweep (sweep_summary.csv, udr.json), "
                              f"not in one run; run a multirun (-m ... seed=0,1,2)")
    if explicit_metrics and not getattr(data, "has_factors", True):
        need = [n for n, fn in metrics.items() if getattr(fn.func, "needs_factors", True)]
        if need:
            raise ConfigError(f"metrics {', '.join(need)} need ground-truth factors, which {type(data).__name__} "
                              f"lacks; use metrics=unsupervised or metrics=none")
