"""A study's scores beside published ones (``python -m dislab.report DIR --reference NAME``).

For each metric of the reference (``dislab.references.<NAME>.METRICS``) and each model: our
distribution per budget (mean ± std, n, budget) next to every published value with its kind and
source. What makes the comparison weak is said next to it: a budget below the reference's, another
data set, metric sample sizes other than the metric's defaults (which are the study's).
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass

from dislab.sweep.study import budget_label, knobs, stats
from dislab.viz.report_plots import Panel


def settings_of(key: str, settings: dict) -> tuple[str, dict] | None:
    """The ``metrics.json`` settings entry that produced the output ``key`` (``dci`` for
    ``dci_disentanglement``): an exact name, else the longest name that prefixes the key."""
    if key in settings:
        return key, settings[key]
    names = [n for n in settings if key.startswith(n + "_")]
    return (max(names, key=len), settings[max(names, key=len)]) if names else None


def off_default(settings: dict) -> dict[str, tuple]:
    """Knobs whose value differs from the metric function's default: ``{knob: (used, default)}``."""
    module, _, name = str(settings.get("function", "")).rpartition(".")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return {}
    out = {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.KEYWORD_ONLY and p.name in settings and p.name not in ("encode_batch", "n_jobs"):
            used, default = settings[p.name], p.default
            if (list(used) if isinstance(used, (list, tuple)) else used) != \
                    (list(default) if isinstance(default, (list, tuple)) else default):
                out[p.name] = (used, default)
    return out


@dataclass
class Comparison:
    metric: str
    model: str
    budget: int | None
    mean: float
    std: float
    n: int
    published: list   # of dislab.references.Published


def compare(groups: dict, ref) -> list[Comparison]:
    """One record per reference metric x model x budget that has our runs or a published value."""
    out = []
    for metric in ref.METRICS:
        published = [p for p in ref.VALUES if p.metric == metric]
        models = sorted({row.model for rows in groups.values() for row in rows} | {p.model for p in published})
        for model in models:
            mine = [p for p in published if p.model == model]
            seen = False
            for b, rows in groups.items():
                vals = [v for row in rows if row.model == model for v in row.values(metric)]
                if vals:
                    seen = True
                    out.append(Comparison(metric, model, b, *stats(vals), mine))
            if not seen and mine:
                out.append(Comparison(metric, model, None, float("nan"), float("nan"), 0, mine))
    return out


def panels(records: list[Comparison], groups: dict) -> list[Panel]:
    """Per metric: per model our scores as points, one series per budget, and the published values
    as bars labelled with their source."""
    out = []
    for metric in dict.fromkeys(r.metric for r in records):
        recs = [r for r in records if r.metric == metric]
        models = list(dict.fromkeys(r.model for r in recs))
        budgets = [b for b in groups if any(r.budget == b and r.n for r in recs)]
        series = {budget_label(b) if len(groups) > 1 else "":
                  [[v for row in groups[b] if row.model == m for v in row.values(metric)] for m in models]
                  for b in budgets}
        refs = list(dict.fromkeys((models.index(r.model), p.value, p.short) for r in recs for p in r.published))
        out.append(Panel(metric, models, series, refs=refs))
    return out


def caveats(groups: dict, ref, runs) -> list[str]:
    """Plain sentences on what separates our runs from the reference's setting."""
    out = []
    short = [b for b in groups if b is None or b < ref.STEPS]
    if short:
        known = [b for b in short if b is not None]
        share = f" ({', '.join(f'{100 * b / ref.STEPS:.2g}%' for b in known)} of it)" if known else ""
        out.append(f"Our runs trained {', '.join(budget_label(b) for b in short)}, below the {ref.STEPS:,} steps of "
                   f"the published setting{share}: they are not a reproduction, and a gap to the published values "
                   f"is expected at this budget, not a failure (nor is a match a success).")
    datasets = sorted({str(knobs(r).get("dataset")) for r in runs} - {"None"})
    if datasets and datasets != [ref.DATASET]:
        out.append(f"Our runs are on {', '.join(datasets)}; the published values are on {ref.DATASET}: "
                   f"the numbers are not comparable.")
    seen, notes = set(), []
    for r in runs:
        for metric in ref.METRICS:
            found = settings_of(metric, getattr(r, "settings", {}))
            if found and found[0] not in seen:
                seen.add(found[0])
                diff = off_default(found[1])
                if diff:
                    knobs_ = ", ".join(f"{k}={v!r} (default {d!r})" for k, (v, d) in sorted(diff.items()))
                    notes.append(f"{found[0]}: {knobs_}")
    if notes:
        out.append("Scored with settings other than the metrics' defaults (the study's): " + "; ".join(notes) + ".")
    return out
