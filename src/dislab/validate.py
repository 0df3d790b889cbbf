"""Check a composed config before any work starts: one clear line for each bad value.

Every knob of ``conf/`` has a rule here, and ``tests/test_knobs.py`` enumerates them (every leaf
of every YAML, and every argument of the ``dislab.*`` class or function a YAML names), so a new
knob without a rule fails the suite:

- ``SHARED``: ``conf/train.yaml``'s shared knobs; ``EVAL``: ``conf/eval.yaml``'s;
- ``METHOD``: the method knobs the model files declare at the top level (``beta=6``), which are
  also the arguments of the model classes (``+model.recon=gaussian``); ``MODELS`` lists each
  model's arguments;
- ``NETS``, ``DATASETS``, ``METRICS``: the arguments of each ``dislab.{nets,data,metrics}.<name>``
  target. A key that a dislab target does not take is refused too, rather than failing after
  training;
- ``TRAINER``, ``OPTIMIZER``, ``LOGGERS``: the keys ``conf/`` sets (further keys go to Lightning,
  torch or W&B as given, and they check them).

Hydra's own keys (``hydra.*``: launcher, sweeper, callbacks, output directories) are Hydra's to
check. Rules that look at the file system (data files, the run directory of ``eval.py``) check
only the form of the value with ``files=False``: before a sweep is launched, as its jobs may run
where other files exist. ``dislab.cli.check_overrides`` runs these checks before Hydra creates
anything; ``run()`` runs them again (in-process callers).
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dislab.conf import model_knobs, target_name
from dislab.data.source import DATA_ENV, PUBLISHED, data_dir, fetch_command, placed, published


class ConfigError(ValueError):
    """A bad value in the run's configuration (reported in one line, exit status 2)."""


@dataclass(frozen=True)
class Rule:
    test: Callable[[object], bool]
    allowed: str              # completes "<key> must be ..."
    bad: tuple = ()           # values that must be refused (the knob test feeds each in)
    offline: Callable[[object], bool] | None = None  # for a test that looks at files: the part that does not

    def check(self, key: str, value, files: bool = True) -> None:
        test = self.test if files or self.offline is None else self.offline
        if not test(value):
            raise ConfigError(f"{key}={_show(value)} is not allowed; {key} must be {self.allowed}")


def _show(v) -> str:
    return "null" if v is None else str(v).lower() if isinstance(v, bool) else repr(v)


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def integer(low: int = 0) -> Rule:
    return Rule(lambda v: _int(v) and v >= low, "a positive integer" if low == 1 else f"an integer >= {low}",
                bad=(low - 1, 2.5, "x"))


def number(low: float = 0.0, strict: bool = False, high: float | None = None) -> Rule:
    def test(v):
        return _num(v) and (v > low if strict else v >= low) and (high is None or v <= high)

    what = f"a number {'>' if strict else '>='} {low:g}" if high is None else f"a number in [{low:g}, {high:g}]"
    return Rule(test, what, bad=(low if strict else low - 1, "x", float("nan"))
                + ((high + 1,) if high is not None else ()))


def one_of(*options: str) -> Rule:
    return Rule(lambda v: isinstance(v, str) and v in options, f"one of {', '.join(options)}", bad=("nonsense", 1))


def optional(rule: Rule) -> Rule:
    return Rule(lambda v: v is None or rule.test(v), f"null or {rule.allowed}",
                bad=tuple(b for b in rule.bad if b is not None))


def _name(v) -> bool:
    if _int(v):
        return v >= 0  # group=2024 arrives as a number
    return isinstance(v, str) and v.strip() != "" and "/" not in v and v not in (".", "..") and v.isprintable()


BOOL = Rule(lambda v: isinstance(v, bool), "true or false", bad=("yes", 1))
NAME = Rule(_name, "a non-empty name without '/'", bad=("", "a/b", [1]))
BETAS = Rule(lambda v: isinstance(v, list) and len(v) == 2 and all(_num(b) and 0 <= b < 1 for b in v),
             "two numbers in [0, 1), e.g. [0.5, 0.999]", bad=([0.5], [0.5, 1.0], "x"))
N_JOBS = Rule(lambda v: v is None or (_int(v) and (v >= 1 or v == -1)), "null, -1 (every core) or a positive integer",
              bad=(0, -2, 1.5, "x"))
DEVICES = Rule(lambda v: v == "auto" or (_int(v) and (v >= 1 or v == -1))
               or (isinstance(v, list) and len(v) > 0 and all(_int(i) and i >= 0 for i in v)),
               "auto, a positive integer, -1 (every device) or a list of device indices", bad=(0, -2, "many", 1.5, []))
NAMES = Rule(lambda v: isinstance(v, list) and all(isinstance(s, str) and s for s in v),
             "a list of names, e.g. [shape]", bad=("shape", [1]))


def _path_ok(v, kind: str) -> bool:
    if not isinstance(v, str) or not v:
        return False
    p = Path(v).expanduser()
    return p.is_dir() if kind == "folder" else p.is_file() if kind == "file" else not p.exists() or p.is_dir()


def path(kind: str, what: str, required: bool = True, null: str = "", fetch: str = "") -> Rule:
    """``kind``: file | folder (must exist) | output (a folder, or nothing yet). ``fetch``: the published set
    that null reads from the data directory (``_from_data_dir``), once downloaded."""
    def text(v):
        return (v is None and not required) or (isinstance(v, str) and v != "")

    what = f"{what} (an existing {kind})" if kind != "output" else what
    if fetch:
        what += (f", or null once `{fetch_command(fetch)}` has placed it in the data directory "
                 f"(${DATA_ENV}, default ~/.cache/dislab/data)")
    return Rule(lambda v: (v is None and not required) or _path_ok(v, kind),
                what if required else f"null ({null}) or {what}",
                bad=("" if kind == "output" else "/nonexistent/dislab-knob-check", 3, *((None,) if required else ())),
                offline=text)


def _run_dir(v) -> bool:
    return _path_ok(v, "folder") and all((Path(v).expanduser() / p).is_file()
                                         for p in (".hydra/config.yaml", "checkpoints/last.ckpt"))


# -- the rules -------------------------------------------------------------------------------

SHARED = {  # conf/train.yaml
    "seed": integer(0), "eval_seed": integer(0), "lr": number(0, strict=True), "z_dim": integer(1),
    "batch_size": integer(1), "steps": integer(1), "metrics_every": integer(0), "num_eval": integer(1),
    "eval_untrained": BOOL, "checkpoint_every": integer(0), "resume": BOOL, "extend": BOOL,
    "pack": integer(1), "nan_policy": one_of("stop", "skip"),
    "num_decomposition": integer(0), "threads": optional(integer(1)), "channels_last": BOOL, "compile": BOOL,
    "compile_mode": one_of("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
    "run_dir": path("output", "a folder (or a path not yet taken)", required=False, null="Hydra's output folder"),
    "group": optional(NAME), "sweep_name": NAME,
    "objective": NAME,  # conf/sweeper/optuna.yaml
}
EVAL = {  # conf/eval.yaml
    "run": Rule(_run_dir, "a run directory (holding .hydra/config.yaml and checkpoints/last.ckpt)",
                bad=("/nonexistent/dislab-knob-check", None), offline=lambda v: isinstance(v, str) and v != ""),
    "eval_seed": optional(integer(0)),
}
METHOD = {  # top-level method knobs (conf/model/*.yaml) = the model classes' arguments
    "beta": number(0), "alpha": number(0), "gamma": number(0), "lam": number(0), "c_max": number(0),
    "c_steps": integer(0), "estimator": one_of("mws", "mss"), "lambda_od": number(0),
    "lambda_d": optional(number(0)), "n_cat": integer(0), "cat_dim": integer(2), "n_cont": integer(0),
    "recon": one_of("bernoulli", "gaussian"), "disc_lr": number(0, strict=True), "disc_betas": BETAS,
    "disc_hidden": integer(1),
    "k": Rule(lambda v: _int(v) and (v == -1 or v >= 1), "-1 (drawn per pair) or a positive integer",
              bad=(0, -2, 1.5, "x")),
    "k_rule": one_of("one_or_k", "exactly_k"),
}
MODELS = {name: ("recon", *knobs.split()) for name, knobs in {
    "vae": "", "ae": "", "beta_vae": "beta", "beta_tcvae": "beta alpha gamma estimator",
    "annealed_vae": "gamma c_max c_steps", "dip_vae_i": "lambda_od lambda_d", "dip_vae_ii": "lambda_od lambda_d",
    "factor_vae": "gamma disc_lr disc_betas", "aae": "lam disc_hidden disc_lr disc_betas",
    "infogan": "lam n_cat cat_dim n_cont disc_lr disc_betas",
    "ada_gvae": "beta k k_rule", "ada_ml_vae": "beta k k_rule", "group_vae": "beta k k_rule", "ml_vae": "beta k k_rule",
}.items()}
NETS = {"conv64": {}, "conv64_paper": {}, "mlp": {"hidden": integer(1)}}

def _device_ok(v) -> bool:
    """``dataset.device`` (``dislab.data._device.check_device``): a known value, and a GPU only where one
    is visible (torch is imported only then: the command-line check runs before any heavy import)."""
    if not (isinstance(v, str) and (v in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", v))):
        return False
    if v.startswith("cuda"):
        import torch

        return torch.cuda.is_available() and (v == "cuda" or int(v[5:]) < torch.cuda.device_count())
    return True


DEVICE = Rule(_device_ok, "auto, cpu, cuda or cuda:<index> (a GPU only where one is visible)",
              bad=("gpu0", "cuda:x", 1), offline=lambda v: isinstance(v, str) and v != "")


def _from_data_dir(node):
    """A data set's node with each null file argument set to the data directory's copy of the published set it
    reads, where that is there (as the data set itself does: ``GroundTruthData.from_data_dir``); where it is not
    and the argument has no procedural stand-in, a ConfigError giving the download command for that very set."""
    name = target_name(node)
    if not isinstance(node, dict) or name not in PUBLISHED:
        return node
    out = dict(node)
    for arg in PUBLISHED[name]:
        fetch = published(name, arg, node) if node.get(arg) is None else None
        found = placed(fetch)
        if found is not None:
            out[arg] = str(found)
        elif fetch and not DATASETS[name][arg].test(None):
            what = DATASETS[name][arg].allowed.split(", or null once")[0]
            raise ConfigError(f"dataset.{arg}=null is not allowed; dataset.{arg} must be {what}, or null once "
                              f"`{fetch_command(fetch)}` has placed it in the data directory {data_dir()}")
    return out


_DSPRITES = path("file", "the official dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz", required=False,
                 null="procedural")
_MEMORY = number(0, strict=True)
DATASETS = {
    "dsprites": {"path": _DSPRITES}, "color_dsprites": {"path": _DSPRITES}, "noisy_dsprites": {"path": _DSPRITES},
    "scream_dsprites": {"path": _DSPRITES,
                        "background": path("file", "a picture, e.g. The Scream's scream.jpg", fetch="scream")},
    "shapes3d": {"path": path("file", "the official 3dshapes.h5", required=False, null="procedural"),
                 "supersample": integer(1)},
    "mpi3d": {"path": path("file", "the official mpi3d_<variant>.npz", fetch="mpi3d_<variant>"),
              "variant": one_of("toy", "realistic", "real"),
              "max_memory_gb": _MEMORY,
              "factor_sizes": optional(Rule(lambda v: isinstance(v, list) and len(v) == 7
                                            and all(_int(s) and s >= 1 for s in v), "7 positive sizes",
                                            bad=([6, 6], [6, 6, 2, 3, 3, 40, 0], "x")))},
    "cars3d": {"path": path("folder", "the folder of the 183 official car .mat files", fetch="cars3d")},
    "smallnorb": {"path": path("folder", "the folder of the six official smallnorb .mat files", fetch="smallnorb"),
                  "block": integer(1)},
    "images": {"path": path("folder", "a folder of images"), "size": integer(8), "crop": optional(integer(1)),
               "cache_dir": path("output", "a folder (or a path not yet taken)", required=False, null="in memory"),
               "max_memory_gb": _MEMORY, "threads": optional(integer(1))},
    "toy": {"size": Rule(lambda v: _int(v) and v >= 16 and v % 16 == 0, "a positive multiple of 16",
                         bad=(0, 17, 2.5, "x")),
            "channels": integer(1)},
}
for _rules in DATASETS.values():  # conf/train.yaml sets it for every data set
    _rules["device"] = DEVICE

_METRIC = {
    "num_train": integer(1), "num_test": integer(1), "num_eval": integer(1), "num_samples": integer(1),
    "num_variance_estimate": integer(1), "batch_size": integer(1), "encode_batch": optional(integer(1)),
    "num_bins": integer(1), "n_jobs": N_JOBS, "C": number(0, strict=True), "max_iter": integer(1),
    "n_estimators": integer(1), "learning_rate": number(0, strict=True), "max_depth": integer(1),
    "prune_threshold": number(0), "diff_quantile": number(0, high=1), "max_points": optional(integer(1)),
    "exclude_factors": NAMES, "continuous_factors": BOOL, "kl_threshold": number(0),
    "alpha": number(0, strict=True),
    "variants": Rule(lambda v: isinstance(v, list) and len(v) > 0 and set(v) <= {"lasso", "spearman"},
                     "a non-empty list of lasso, spearman", bad=("lasso", ["ridge"], [])),
}


def _pick(names: str, **special: Rule) -> dict[str, Rule]:
    return {n: special.get(n) or _METRIC[n] for n in names.split()}


METRICS = {
    "mig": _pick("num_train num_bins batch_size encode_batch"),
    "mig_chen": _pick("num_samples max_points exclude_factors encode_batch n_jobs"),
    "dci": _pick("num_train num_test batch_size n_jobs n_estimators learning_rate max_depth encode_batch"),
    "sap": _pick("num_train num_test batch_size continuous_factors C n_jobs encode_batch"),
    "modularity": _pick("num_train num_test batch_size num_bins C max_iter n_jobs encode_batch"),
    "irs": _pick("num_train batch_size diff_quantile num_bins encode_batch", num_bins=optional(integer(1))),
    "unsupervised": _pick("num_train batch_size num_bins encode_batch"),
    "beta_vae_score": _pick("batch_size num_train num_eval C max_iter encode_batch"),
    "factor_vae_score": _pick("batch_size num_train num_eval num_variance_estimate prune_threshold encode_batch"),
    "udr": _pick("kl_threshold alpha variants"),
    "downstream_task": _pick(
        "num_train num_test batch_size predictor n_jobs n_estimators learning_rate max_depth Cs folds multi_class "
        "encode_batch",
        num_train=Rule(lambda v: isinstance(v, list) and len(v) > 0 and all(_int(n) and n > 0 for n in v)
                       and len(set(v)) == len(v), "a non-empty list of distinct positive integers",
                       bad=(10, [], [10, 10], [0], ["x"])),
        predictor=one_of("boosted_trees", "logistic_regression"), Cs=integer(1), folds=integer(2),
        multi_class=one_of("ovr", "multinomial")),
    "fairness": _pick("num_train num_test_points_per_class batch_size n_jobs n_estimators learning_rate max_depth "
                      "encode_batch", num_test_points_per_class=integer(1)),
    "infomec": _pick("num_train batch_size estimator num_bins n_neighbors prune_threshold max_iter n_jobs encode_batch",
                     estimator=one_of("ksg", "binned", "discrete"), n_neighbors=integer(1),
                     prune_threshold=Rule(lambda v: _num(v) and 0 <= v < 1, "a number in [0, 1)",
                                          bad=(-0.1, 1, "x", float("nan")))),
}
STUDY = {"methods": NAMES, "baseline": optional(NAME), "reference": optional(NAME),  # conf/sweep/unsupervised_study
         "report": BOOL}
TRAINER = {  # the keys conf/trainer/*.yaml set
    "accelerator": one_of("auto", "cpu", "gpu", "cuda", "mps", "tpu"), "devices": DEVICES,
    "enable_checkpointing": BOOL,
    "strategy.process_group_backend": optional(one_of("nccl", "gloo", "mpi", "ucc")),
    "strategy.find_unused_parameters": BOOL,
}
OPTIMIZER = {"lr": number(0, strict=True), "fused": optional(BOOL), "betas": BETAS}
TRACKING_URI = Rule(lambda v: v is None or (isinstance(v, str) and re.match(r"^(https?|file|sqlite|postgresql|mysql|"
                                                                           r"mssql|databricks)[+:]", v) is not None),
                    "null (one store for every run: outputs/mlflow.db) or a tracking URI such as http://127.0.0.1:5000",
                    bad=("", "localhost:5000", "mlflow.db", 5000))
LOGGERS = {"wandb": {"project": NAME}, "csv": {"name": NAME}, "tensorboard": {"name": NAME},
           "mlflow": {"experiment_name": NAME, "tracking_uri": TRACKING_URI}}


# -- checking --------------------------------------------------------------------------------

def _plain(cfg) -> dict:
    """The config resolved into plain dicts and lists (``???`` stays as it is)."""
    if isinstance(cfg, dict):
        return cfg
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None)
        raise ConfigError(f"{key + ': ' if key else ''}{str(e).splitlines()[0]}") from None


def _get(node, key: str):
    """(whether ``node`` holds the dotted ``key``, its value)."""
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _check(node: dict, rules: dict[str, Rule], prefix: str, files: bool) -> None:
    """Each key of ``rules`` that ``node`` holds."""
    for key, rule in rules.items():
        held, value = _get(node, key)
        if held:
            if value == "???":
                raise ConfigError(f"{prefix}{key} is required (pass {prefix}{key}=...)")
            rule.check(prefix + key, value, files)


def _check_target(node, key: str, label: str, table: dict, files: bool) -> None:
    """The node ``key`` of a dislab target: only its own arguments, each by its rule."""
    name = target_name(node)
    if name not in table:  # somebody's own class (their rules), or a target this table lacks (the test says so)
        return
    rules = table[name]
    for k in node:
        if k not in ("_target_", "_partial_", "_args_", "_recursive_", "_convert_") and k not in rules:
            raise ConfigError(f"{label or f'{key}={name}'} has no knob '{k}' "
                              f"(its knobs: {', '.join(sorted(rules)) or 'none'})")
    _check(node, rules, f"{key}.", files)


def validate(cfg, files: bool = True) -> None:
    """Raise ConfigError naming the first bad value and what is allowed. ``files``: also check
    that the files and folders knobs name exist."""
    c = _plain(cfg)
    if "model" not in c:  # conf/eval.yaml
        _check(c, EVAL, "", files)
    else:
        _check(c, SHARED, "", files)
        model = target_name(c["model"])
        _check(c, {k: METHOD[k] for k in model_knobs().get(model, {}) if k in METHOD}, "", files)
        if model in MODELS:
            rules = {model: {k: METHOD[k] for k in MODELS[model]}}
            _check_target(c["model"], "model", f"model={model}", rules, files)
        for key, table in (("net", NETS), ("dataset", DATASETS)):
            _check_target(_from_data_dir(c.get(key)) if key == "dataset" else c.get(key), key, "", table, files)
        for key, rules in (("trainer", TRAINER), ("optimizer", OPTIMIZER), ("study", STUDY), *(
                (f"logger.{name}", r) for name, r in LOGGERS.items())):
            held, node = _get(c, key)
            if held and isinstance(node, dict):
                _check(node, rules, f"{key}.", files)
        if model == "infogan":
            need = c["n_cat"] * c["cat_dim"] + c["n_cont"]
            if need > c["z_dim"]:
                raise ConfigError(f"z_dim={c['z_dim']} is not allowed with model=infogan's codes: z_dim must be "
                                  f">= n_cat * cat_dim + n_cont = {need}")
    for group in ("metrics", "metrics_during"):
        for name, node in (c.get(group) or {}).items():
            _check_target(node, f"{group}.{name}", f"{group}.{name}", METRICS, files)


def validate_data(cfg, data, metrics: dict, explicit_metrics: bool) -> None:
    """``explicit_metrics``: the user chose ``metrics=...`` rather than taking the default list."""
    import inspect

    if cfg.batch_size > len(data):
        raise ConfigError(f"batch_size={cfg.batch_size} is larger than the data set ({len(data)} points)")
    if "k_rule" in cfg.model:  # a weakly-supervised method: pairs of the data set's factors
        from hydra.utils import get_class

        from dislab.data.pairs import PairSampler

        try:
            PairSampler(data, cfg.model.k, cfg.model.k_rule)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if getattr(get_class(cfg.model._target_), "labelled", False) and cfg.z_dim < data.num_factors:
            raise ConfigError(f"z_dim={cfg.z_dim} is not allowed with {target_name(cfg.model)} on "
                              f"{type(data).__name__}: latent j stands for factor j, so z_dim must be >= "
                              f"{data.num_factors}")
    for name, fn in metrics.items():
        if next(iter(inspect.signature(fn.func).parameters)) == "representations":
            raise ConfigError(f"{name} is scored across the seeds of a sweep (sweep_summary.csv, udr.json), "
                              f"not in one run; run a multirun (-m ... seed=0,1,2)")
    if explicit_metrics and not getattr(data, "has_factors", True):
        need = [n for n, fn in metrics.items() if getattr(fn.func, "needs_factors", True)]
        if need:
            raise ConfigError(f"metrics {', '.join(need)} need ground-truth factors, which {type(data).__name__} "
                              f"lacks; use metrics=unsupervised or metrics=none")
