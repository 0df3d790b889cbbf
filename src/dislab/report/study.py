"""What a report compares: runs grouped by training budget, then by model and hyperparameters.

A row of a report is one model at one setting of the knobs that differ between the runs, at one
budget. The knobs are read from each run's *resolved* ``.hydra/config.yaml`` (and the config groups
chosen in ``hydra.yaml``), not only from its overrides, so a value that came from a model's YAML or
a preset (``model=beta_vae`` -> beta 4, ``model=beta_tcvae`` -> beta 6) labels its row as much as one
typed on the command line. Keys that say where or how a run was scored or logged are left out
(``IGNORED``); ``steps`` is left out because budgets are never pooled: a run's budget is the number
of steps it trained (``global_step`` of a finished run, else its ``steps``), and each budget is a
separate group.

Nothing here imports torch or Lightning.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from dislab.rundir import BOOKKEEPING, HISTORY, METRICS, override_key, rescores
from dislab.sweep.runs import Run, find_runs, finite, flatten

# top-level config keys that say how a run was executed, scored or logged, not what it trained
IGNORED = (*(b for b in BOOKKEEPING if "." not in b),  # where or how it ran, what it logged (dislab.rundir)
           "seed", "steps", "trainer", "metrics", "eval_seed", "num_eval", "num_decomposition")  # pooled or kept apart
IGNORED_GROUPS = ("model", "logger", "trainer", "launcher", "metrics", "metrics@metrics_during", "callbacks", "sweep")
_INTERPOLATION = re.compile(r"^\$\{([A-Za-z_][\w]*)\}$")


@dataclass
class StudyRun(Run):
    """A run as ``runs.read_run`` reads it, plus what a report shows beside its metrics: the scores of
    the untrained network and each metric's settings (both from ``metrics.json``)."""
    untrained: dict[str, float] = field(default_factory=dict)
    settings: dict[str, dict] = field(default_factory=dict)


def load(paths) -> list[StudyRun]:
    out = []
    for r in find_runs(paths):
        saved = {}
        if r.status == "done":
            try:
                saved = json.loads((r.dir / METRICS).read_text())
            except (OSError, ValueError):
                pass
        settings = dict(saved.get("settings") or {})
        for _, again in rescores(r.dir) if r.status == "done" else ():  # eval.py's metrics, with their settings
            settings.update(again.get("settings") or {})
        out.append(StudyRun(**vars(r), untrained=dict(saved.get("untrained") or {}), settings=settings))
    return out


def knobs(run: Run) -> dict:
    """The run's training settings as flat ``key -> value``: top-level knobs (``beta``, ``lr``),
    nested values that are not a top-level knob's interpolation (``net.hidden``, ``model.recon``),
    and the chosen config groups (``net``, ``dataset``) by option name."""
    cfg = {k: v for k, v in run.config.items() if k not in IGNORED}
    try:
        resolved = OmegaConf.to_container(OmegaConf.create(cfg), resolve=True)
    except Exception:  # an interpolation this process cannot resolve: compare the saved text
        resolved = cfg
    raw, out = flatten(cfg), {}
    for key, value in flatten(resolved).items():
        leaf = key.rsplit(".", 1)[-1]
        m = _INTERPOLATION.match(str(raw.get(key, "")))
        if "." in key and ((m and m.group(1) in cfg) or leaf == "_partial_" or key == "model._target_"):
            continue  # a top-level knob's copy, or not a setting
        if leaf == "_target_":  # a class: dislab's by its module (the option's name), others by class name
            key, parts = key.rsplit(".", 1)[0], str(value).split(".")
            value = parts[-2] if parts[0] == "dislab" and len(parts) > 2 else parts[-1]
        out[key] = value
    out.update({k: v for k, v in run.choices.items() if k not in IGNORED_GROUPS and v is not None})
    return out


def _same(v) -> str:
    return json.dumps(v, sort_keys=True, default=str)


DEFAULT = "default"  # a knob another run of the same model sets and this one leaves to the code's default


def differing(runs: list[Run], table: dict[Path, dict] | None = None) -> list[str]:
    """Keys whose value differs between the runs that have them, or that some runs of a model set and
    others of the same model do not (``+net.hidden=32`` against the code's default); overridden keys
    first (in the order typed), then the rest alphabetically."""
    table = table or {r.dir: knobs(r) for r in runs}
    values: dict[str, set] = {}
    models: dict[str, set] = {}
    for r in runs:
        models.setdefault(r.model, set()).add(r.dir)
        for k, v in table[r.dir].items():
            values.setdefault(k, set()).add(_same(v))
    keys = [k for k, vs in values.items() if len(vs) > 1 or any(
        len({k in table[d] for d in dirs}) > 1 for dirs in models.values())]
    typed = list(dict.fromkeys(override_key(o) for r in runs for o in r.overrides))
    return sorted(keys, key=lambda k: (typed.index(k) if k in typed else len(typed), k))


def fmt_value(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def budget(run: Run) -> int | None:
    """Training steps: those a finished run took, else those it was asked for."""
    if run.status == "done" and run.global_step is not None:
        return int(run.global_step)
    steps = run.config.get("steps")
    return int(steps) if isinstance(steps, (int, float)) else None


def budget_label(steps: int | None) -> str:
    return "unknown budget" if steps is None else f"{steps:,} steps"


def _sort_key(v):
    if v == DEFAULT:
        return (-1, 0.0, "")
    return (0, float(v), "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0.0, _same(v))


@dataclass
class Row:
    """One model at one setting of the differing knobs, at one budget; its runs are seeds."""
    model: str
    budget: int | None
    settings: dict              # differing key -> value (only the keys this model's runs have)
    runs: list[Run] = field(default_factory=list)

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={fmt_value(v)}" for k, v in self.settings.items()) or "(no differing knobs)"

    @property
    def done(self) -> list[Run]:
        return [r for r in self.runs if r.status == "done"]

    def values(self, key: str, untrained: bool = False) -> list[float]:
        return finite((r.untrained if untrained else r.metrics).get(key) for r in self.done)


def group(runs: list[Run]) -> tuple[dict[int | None, list[Row]], list[str]]:
    """``{budget: rows}`` (budgets ascending; rows by model, then by setting) and the differing keys."""
    table = {r.dir: knobs(r) for r in runs}
    keys = differing(runs, table)
    has = {(r.model, k) for r in runs for k in table[r.dir]}
    rows: dict[tuple, Row] = {}
    for r in runs:
        settings = {k: table[r.dir].get(k, DEFAULT) for k in keys if (r.model, k) in has}
        key = (budget(r), r.model, _same(settings))
        rows.setdefault(key, Row(r.model, budget(r), settings)).runs.append(r)
    out: dict[int | None, list[Row]] = {}
    order = sorted(rows.values(), key=lambda row: (row.budget is None, row.budget or 0, row.model,
                                                   [_sort_key(v) for v in row.settings.values()]))
    for row in order:
        out.setdefault(row.budget, []).append(row)
    return out, keys


def stats(values: list[float]) -> tuple[float, float, int]:
    """Mean, sample std (ddof=1; 0 for one value) and count."""
    if not values:
        return float("nan"), float("nan"), 0
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, len(values)


def fmt_stats(mean: float, std: float, n: int) -> str:
    return "–" if n == 0 else f"{mean:.3f} ± {std:.3f}" if n > 1 else f"{mean:.3f}"


# Which way is better. Scores of disentanglement, completeness, informativeness and model selection
# (UDR) are better high; the unsupervised scores of Locatello et al. 2019 measure dependence between
# latents (a factorised code scores 0), and fairness measures how much predictions move under
# interventions (0 is fair), so both are better low. Training accuracies, counts of active
# dimensions and train-set informativeness are diagnostics, not goals.
LOWER_IS_BETTER = ("gaussian_total_correlation", "gaussian_wasserstein_correlation",
                   "gaussian_wasserstein_correlation_norm", "mutual_info_score")
HIGHER_IS_BETTER = ("mig", "mig_chen", "dci_disentanglement", "dci_completeness", "dci_informativeness", "sap",
                    "modularity", "explicitness", "factor_vae_score", "beta_vae_score", "irs", "infom", "infoc",
                    "infoe", "udr_lasso", "udr_spearman")


def direction(key: str) -> str:
    """``↑`` (higher is better), ``↓`` (lower is better), ``·`` (a diagnostic) or ``?`` (unknown)."""
    if "train_accuracy" in key or key.endswith("_train") or "num_active" in key:
        return "·"
    if key in LOWER_IS_BETTER or key.startswith("fairness_"):
        return "↓"
    if key in HIGHER_IS_BETTER or key.startswith("udr_") or (key.startswith("downstream_task_")
                                                             and "test_accuracy" in key):
        return "↑"
    return "?"


def bounds(key: str) -> tuple[float, float] | None:
    """(0, 1) for a metric that lies between 0 and 1 (every score of ``HIGHER_IS_BETTER``, UDR, fairness's total
    variations, accuracies), so its figures show that whole range; None for an unbounded one."""
    if key in HIGHER_IS_BETTER or key.startswith(("udr_", "fairness_")) or "accuracy" in key:
        return 0.0, 1.0
    return None


DIRECTION_WORDS = {"↑": "higher is better", "↓": "lower is better", "·": "a diagnostic, neither",
                   "?": "direction not known to the report"}


def settings_summary(runs: list[Run]) -> dict[str, dict[str, int]]:
    """Per metric, each distinct setting string (``num_train=10000, num_bins=20``) and how many finished
    runs used it, from ``metrics.json`` ``settings``; knobs that do not change the number
    (``function``, ``encode_batch``, ``n_jobs``) are left out."""
    out: dict[str, dict[str, int]] = {}
    for r in runs:
        for name, knobs_ in sorted(r.settings.items()):
            text = ", ".join(f"{k}={fmt_value(v)}" for k, v in sorted(knobs_.items())
                             if k not in ("function", "encode_batch", "n_jobs"))
            out.setdefault(name, {}).setdefault(text, 0)
            out[name][text] += 1
    return out


# --- training curves (history.csv) -------------------------------------------------------------

CURVE_FIRST = ("train/loss", "train/recon", "train/kl")
_SKIP_CURVE = re.compile(r"^(train/(?!loss$|recon$|kl$).*|decomposition/kl_(\d+|sampled))$")


def read_history(run: Run) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``history.csv`` as ``{column: (steps, values)}``, empty cells dropped."""
    path = run.dir / HISTORY
    if not path.exists():
        return {}
    cols: dict[str, tuple[list, list]] = {}
    with open(path, newline="") as f:
        for line in csv.DictReader(f):
            step = line.pop("step", None)
            for k, v in line.items():
                try:
                    value = float(v)
                except (TypeError, ValueError):
                    continue
                if step is not None and math.isfinite(value):
                    xs, ys = cols.setdefault(k, ([], []))
                    xs.append(int(float(step)))
                    ys.append(value)
    return {k: (np.array(xs), np.array(ys)) for k, (xs, ys) in cols.items()}


def curve_keys(histories: list[dict], limit: int = 12) -> list[str]:
    """The loss terms first, then every other column logged at 3 or more steps (metrics scored during
    training, the ELBO decomposition), at most ``limit``."""
    seen = {k for h in histories for k, (xs, _) in h.items() if len(xs) >= 3 or k in CURVE_FIRST}
    first = [k for k in CURVE_FIRST if k in seen]
    rest = sorted(k for k in seen if k not in first and not _SKIP_CURVE.match(k))
    return (first + rest)[:limit]


def mean_curve(histories: list[dict], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Steps, mean, min and max over the runs that logged ``key`` at each step."""
    by_step: dict[int, list[float]] = {}
    for h in histories:
        if key in h:
            for x, y in zip(*h[key], strict=True):
                by_step.setdefault(int(x), []).append(float(y))
    steps = np.array(sorted(by_step))
    vals = [by_step[s] for s in steps]
    return (steps, np.array([np.mean(v) for v in vals]), np.array([min(v) for v in vals]),
            np.array([max(v) for v in vals]))
