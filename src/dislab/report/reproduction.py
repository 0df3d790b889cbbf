"""A study's scores beside published ones (``python -m dislab.report DIR --reference NAME``).

For each metric of the reference (``dislab.report.references.<NAME>.METRICS``) and each model: our
distribution per budget (mean ± std, n, budget) next to every published value with its kind and
source. What makes the comparison weak is said next to it: a budget below the reference's, another
data set, metric sample sizes other than the metric's defaults (which are the study's).
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from html import escape as e

from dislab.report.plots import Panel, distributions
from dislab.report.study import bounds, budget_label, direction, fmt_stats, knobs, stats


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
    """One record per reference metric x model x budget where our runs have that metric: a reference names no
    model that did not run (nor a metric none of our runs has)."""
    out = []
    for metric in ref.METRICS:
        published = [p for p in ref.VALUES if p.metric == metric]
        for model in sorted({row.model for rows in groups.values() for row in rows}):
            mine = [p for p in published if p.fits(model)]
            for b, rows in groups.items():
                vals = [v for row in rows if row.model == model for v in row.values(metric)]
                if vals:
                    out.append(Comparison(metric, model, b, *stats(vals), mine))
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
        n = {m: sum(r.n for r in recs if r.model == m) for m in models}
        out.append(Panel(metric, [f"{m}\nn={n[m]}" for m in models], series, refs=refs, ylim=bounds(metric)))
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


def _budget_vs(b, steps: int) -> str:
    if b is not None and b >= steps:
        return e(budget_label(b))
    share = "below the published budget" if b is None else f"{100 * b / steps:.2g}% of the published {steps:,}"
    return f"{e(budget_label(b))} <span class='bad'>({share})</span>"


def section(ref, groups: dict, runs, figure) -> tuple[list[str], list[dict]]:
    """The report's HTML for the comparison, and its rows for ``reference.csv``; ``figure(name, png,
    caption)`` writes a figure and returns its HTML."""
    records = compare(groups, ref)
    sources = list(dict.fromkeys(p.cite for r in records for p in r.published))
    setting = getattr(ref, "SETTING", f"The published setting trains {ref.STEPS:,} steps on {ref.DATASET}.")
    h = [f"<h2 id='reference'>Against published numbers: {e(ref.TITLE)}</h2>",
         f"<p>{e(setting)} Coloured bars: published values, "
         "one colour per source (legend below the figure; full sources under the table). A “best reported” value "
         "is the best one paper reported for that method, not a mean over seeds.</p>"]
    h += [f"<p class='warn'>{e(c)}</p>" for c in caveats(groups, ref, runs)]
    panels_ = panels(records, groups)
    for p in panels_:
        p.title = f"{p.title} {direction(p.title)}"
    if panels_:
        caption = (f"Our scores per model (one point per run, n under each name) beside the values published on "
                   f"{ref.DATASET} (each with its budget: sources under the table), one colour per source; scores "
                   f"between 0 and 1 on that whole axis")
        h.append(figure("reference.png", distributions(panels_, ncols=3, title=caption), caption))
    h.append("<div class='scroll'><table id='reference-table'><tr><th class='l'>metric</th><th class='l'>model</th>"
             "<th>ours: mean ± std</th><th>n</th><th class='l'>budget</th><th class='l'>published</th></tr>")
    csv_rows, previous = [], None
    for r in records:
        pubs = "; ".join(f"{e(p.text)} [{sources.index(p.cite) + 1}]" for p in r.published)
        first = " class='first'" if r.metric != previous else ""
        previous = r.metric
        h.append(f"<tr{first}><td class='l'>{e(r.metric)} {direction(r.metric)}</td><td class='l'>{e(r.model)}</td>"
                 f"<td>{fmt_stats(r.mean, r.std, r.n)}</td><td>{r.n}</td>"
                 f"<td class='l'>{_budget_vs(r.budget, ref.STEPS) if r.n else 'no runs'}</td>"
                 f"<td class='l'>{pubs or '<span class=u>none held</span>'}</td></tr>")
        for p in r.published or [None]:
            csv_rows.append({"metric": r.metric, "model": r.model, "budget": r.budget, "ours_mean": r.mean,
                             "ours_std": r.std, "n": r.n, "published": p.value if p else "",
                             "kind": p.kind if p else "", "std": p.std if p else "", "row": p.row if p else "",
                             "setting": p.setting if p else "", "definition": p.definition if p else "",
                             "budget_published": p.budget if p else "", "source": p.source if p else ""})
    h.append("</table></div><ol class='sources'>" + "".join(f"<li>{e(s)}</li>" for s in sources) + "</ol>")
    return h, csv_rows
