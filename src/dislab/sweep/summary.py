"""The end of a sweep: one row per job (overrides, status, every metric, UDR) in
``sweep_summary.csv``, UDR per cell in ``udr.json``, a table on the console and, with W&B on, each
job's UDR in the job's own W&B run (``udr_to_runs``) and a summary run (``log_to_wandb``) whose config
holds the sweep's axes and whose values are per cell (mean over seeds), never across cells.

UDR (Duan et al. 2020) is a population metric: the runs of one cell (same overrides, different
``seed``) are compared with each other, from the ``representation.npz`` every run writes (means and
per-latent KL on the same evaluation points), so no model is reloaded.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from pathlib import Path

import numpy as np

from dislab import atomic
from dislab.rundir import METRICS, REPRESENTATION, is_bookkeeping, override_key
from dislab.sweep.runs import (
    STATUSES,
    Run,
    cell_of,
    finite,
    order_metrics,
    read_run,
    run_dirs,
    value_of,
)
from dislab.trackers.wandb import add_to_runs, log_run

log = logging.getLogger("dislab.sweep")
VARIANTS = ("lasso", "spearman")


def _representation(run: Run) -> dict | None:
    path = run.dir / REPRESENTATION
    if run.status != "done" or not path.exists():
        return None
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def compute_udr(runs: list[Run], variants=VARIANTS, **kwargs) -> tuple[dict, list[dict]]:
    """UDR across the seeds of every cell (``dislab.metrics.udr.udr``; ``kwargs`` go to it:
    ``kl_threshold``, ``alpha``). Returns ``{job dir: {udr_<variant>: score}}`` and one record per
    cell. A cell with fewer than two finished runs has no UDR (the record says why); one with fewer than
    ``dislab.metrics.udr.MIN_SEEDS`` has UDR with a ``warning`` that it means little."""
    cells: dict[tuple, list[Run]] = {}
    for r in runs:
        cells.setdefault(cell_of(r.overrides), []).append(r)
    per_run, records = {}, []
    for cell, members in cells.items():
        reps, used = [], []
        for r in members:
            rep = _representation(r)
            if rep is not None:
                reps.append(rep)
                used.append(r)
        rec = {"cell": " ".join(cell), "overrides": list(cell), "runs": [str(r.dir) for r in used],
               "seeds": [r.seed for r in used],
               "unfinished": [{"run": str(r.dir), "seed": r.seed, "status": r.status, "error": r.error}
                              for r in members if r.status != "done"]}
        sizes = {len(rep["means"]) for rep in reps}
        if len(reps) < 2:
            rec["note"] = f"{len(reps)} finished run(s) with representation.npz; UDR needs at least 2 seeds"
        elif len(sizes) > 1 or len({int(rep.get("eval_seed", 0)) for rep in reps}) > 1:
            rec["note"] = "runs were scored on different evaluation points (num_eval/eval_seed differ)"
        else:
            from dislab.metrics.udr import seeds_warning, udr

            try:
                scores = udr(reps, variants=tuple(variants), **kwargs)
            except Exception as e:  # one broken cell must not hide the others
                log.warning("UDR failed for %s: %s: %s", rec["cell"], type(e).__name__, e)
                rec["error"] = f"{type(e).__name__}: {e}"
                scores = []
            for v in variants if scores else ():
                rec[f"udr_{v}"] = [s[f"udr_{v}"] for s in scores]
                rec[f"udr_{v}_mean"] = float(np.mean(rec[f"udr_{v}"]))
            if scores and seeds_warning(len(used)):
                rec["warning"] = seeds_warning(len(used))
            for r, s in zip(used, scores, strict=False):
                per_run[str(r.dir)] = dict(s)
        records.append(rec)
    return per_run, records


def _relative(path, sweep_dir: Path) -> str:
    path = Path(path)
    return str(path.relative_to(sweep_dir)) if path.is_relative_to(sweep_dir) else str(path)


def rows(runs: list[Run], sweep_dir: Path, udr: dict) -> list[dict]:
    metric_keys = order_metrics({k for r in runs for k in r.metrics})
    out = []
    for r in runs:
        row = {"job": _relative(r.dir, sweep_dir),
               "status": r.status, "seed": r.seed, "cell": " ".join(cell_of(r.overrides)),
               "overrides": " ".join(r.overrides)}
        row.update({k: r.metrics.get(k) for k in metric_keys})
        row.update({f"udr_{v}": udr.get(str(r.dir), {}).get(f"udr_{v}") for v in VARIANTS})
        row.update(global_step=r.global_step, rescored=" ".join(_relative(p, sweep_dir) for p in r.rescored),
                   error=r.error)
        out.append(row)
    return out


def to_csv(table: list[dict]) -> str:
    buf = io.StringIO()
    if table:
        w = csv.DictWriter(buf, fieldnames=list(table[0]))
        w.writeheader()
        for row in table:
            w.writerow({k: ("" if v is None else repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def varying_overrides(runs: list[Run]) -> dict[str, str]:
    """Per job dir, only the overrides that differ between jobs (for a readable console table)."""
    common = set.intersection(*(set(r.overrides) for r in runs)) if runs else set()
    return {str(r.dir): " ".join(o for o in r.overrides if o not in common) for r in runs}


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.3g}"
    return str(v)


def console_table(table: list[dict], runs: list[Run], metric_keys: list[str], most: int = 6) -> str:
    """Status, the overrides that differ and a few metrics per job (every metric is in the CSV)."""
    labels = varying_overrides(runs)
    shown = order_metrics(metric_keys)
    cols = ["job", "status", "overrides", *shown[:most], *(f"udr_{v}" for v in VARIANTS)]
    lines = [[str(c) for c in cols]]
    for row, r in zip(table, runs, strict=True):
        lines.append([row["job"], row["status"], labels[str(r.dir)] or "-",
                      *(_fmt(row.get(k)) for k in cols[3:])])
    widths = [max(len(line[i]) for line in lines) for i in range(len(cols))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def summarize(sweep_dir, started: float | None = None, udr_kwargs: dict | None = None) -> dict:
    """Read every job of ``sweep_dir``; write ``sweep_summary.csv`` and ``udr.json`` there.
    Returns ``{"runs", "table", "udr", "failed", "text"}``; ``text`` is the console report."""
    sweep_dir = Path(sweep_dir)
    runs = [read_run(d) for d in run_dirs(sweep_dir)]
    per_run, cells = compute_udr(runs, **(udr_kwargs or {}))
    table = rows(runs, sweep_dir, per_run)
    atomic.write_text(sweep_dir / "sweep_summary.csv", to_csv(table))
    for c in cells:
        c["runs"] = [_relative(p, sweep_dir) for p in c["runs"]]
        for u in c["unfinished"]:
            u["run"] = _relative(u["run"], sweep_dir)
    from dislab.metrics.udr import MIN_SEEDS

    atomic.write_json(sweep_dir / "udr.json", {
        "variants": list(VARIANTS), "settings": udr_kwargs or {}, "min_seeds": MIN_SEEDS, "cells": cells,
        "runs": {_relative(k, sweep_dir): v for k, v in per_run.items()}})
    metric_keys = sorted({k for r in runs for k in r.metrics})
    failed = [r for r in runs if r.status != "done"]
    counts = {s: sum(r.status == s for r in runs) for s in STATUSES}
    reused = 0
    if started is not None:
        reused = sum(r.status == "done" and (r.dir / METRICS).stat().st_mtime < started for r in runs)
    head = f"sweep {sweep_dir}: {len(runs)} jobs, {counts['done']} done"
    head += f" ({reused} from an earlier run, skipped)" if reused else ""
    head += "".join(f", {n} {s}" for s, n in counts.items() if s != "done" and n)
    text = [head, console_table(table, runs, metric_keys)]
    if len(metric_keys) > 6:
        text.append(f"({len(metric_keys)} metrics; all of them are in sweep_summary.csv)")
    if failed:
        labels = varying_overrides(runs)
        text.append("not finished:")
        text += [f"  job {row['job']} ({labels[str(r.dir)] or '-'}): {r.error or r.status}"
                 for row, r in zip(table, runs, strict=True) if r.status != "done"]
        text.append("re-run the same command to redo them; finished jobs are skipped")
    common = set.intersection(*(set(c["overrides"]) for c in cells)) if cells else set()
    for c in cells:
        means = [f"{v} {c[f'udr_{v}_mean']:.3f}" for v in VARIANTS if f"udr_{v}_mean" in c]
        label = " ".join(o for o in c["overrides"] if o not in common) or "(all runs)"
        if means:
            text.append(f"UDR {label}: {', '.join(means)} (mean over {len(c['runs'])} seeds)")
    few = [f"{' '.join(o for o in c['overrides'] if o not in common) or '(all runs)'} ({len(c['runs'])} seeds)"
           for c in cells if c.get("warning")]
    if few:  # one line: each run's UDR compares it with the other seeds of its cell, too few of them here
        text.append(f"warning: UDR over fewer than {MIN_SEEDS} seeds means little (each run's score is the median "
                    f"of its comparisons with the other seeds): {', '.join(few)}; see udr.json")
    text.append(f"written: {sweep_dir / 'sweep_summary.csv'}, {sweep_dir / 'udr.json'}")
    return {"runs": runs, "table": table, "udr": cells, "failed": failed, "text": "\n".join(text),
            "dir": str(sweep_dir)}


def sweep_axes(runs: list[Run]) -> dict[str, list]:
    """The keys the jobs override (``model``, knobs, ``seed``; not where they ran) that take more than
    one value, in the order typed, each with its values in job order (from the resolved config)."""
    keys: list[str] = []
    for r in runs:
        for o in r.overrides:
            k = override_key(o)
            if (k == "seed" or not is_bookkeeping(o)) and k not in keys:
                keys.append(k)
    axes = {}
    for k in keys:
        values = []
        for r in runs:
            v = value_of(r, k) if k != "model" else r.choices.get("model", r.model)
            if v not in values:
                values.append(v)
        if len(values) > 1:
            axes[k] = values
    return axes


def cell_table(summary: dict) -> tuple[list[str], list[list]]:
    """One row per cell: its overrides, seeds finished, each metric's mean and std over those seeds,
    and the cell's UDR means. Metrics are never averaged across cells (different models or knobs)."""
    done = [r for r in summary["runs"] if r.status == "done"]
    keys = order_metrics({k for r in done for k in r.metrics})
    udr = {c["cell"]: c for c in summary["udr"]}
    cols = ["cell", "seeds", *(f"{k}_{s}" for k in keys for s in ("mean", "std")),
            *(f"udr_{v}_mean" for v in VARIANTS)]
    out = []
    for cell in dict.fromkeys(" ".join(cell_of(r.overrides)) for r in summary["runs"]):
        members = [r for r in done if " ".join(cell_of(r.overrides)) == cell]
        row = [cell, len(members)]
        for k in keys:
            vals = finite(r.metrics.get(k) for r in members)
            row += [float(np.mean(vals)) if vals else None, float(np.std(vals)) if vals else None]
        row += [udr.get(cell, {}).get(f"udr_{v}_mean") for v in VARIANTS]
        out.append(row)
    return cols, out


def cell_labels(runs: list[Run]) -> dict[str, str]:
    """Each cell (``cell_of``, joined) -> the overrides that tell it from the sweep's other cells (those every
    cell shares left out), or ``all`` where nothing does: the cell's name in the summary run's keys."""
    cells = {" ".join(c): c for c in (cell_of(r.overrides) for r in runs)}
    common = set.intersection(*map(set, cells.values())) if len(cells) > 1 else set().union(*cells.values())
    return {name: " ".join(o for o in c if o not in common) or "all" for name, c in cells.items()}


def udr_to_runs(summary: dict) -> list[Path]:
    """Each finished job's UDR scores (``udr_lasso``, ``udr_spearman``: against the other seeds of its
    cell) as summary values of the job's own W&B run, resumed by its id. Returns the jobs written to."""
    per_run = {}
    for c in summary["udr"]:
        for i, path in enumerate(c["runs"]):
            values = {f"udr_{v}": c[f"udr_{v}"][i] for v in VARIANTS if f"udr_{v}" in c}
            if values:
                per_run[path] = {**values, "udr_seeds": len(c["runs"])}
    sweep_dir = summary.get("dir")
    return add_to_runs({(Path(sweep_dir) / p if sweep_dir else Path(p)): v for p, v in per_run.items()})


# the tables of the sweep's report (``python -m dislab.report``: comparisons against the baseline, ranks, variance
# shares, Spearman matrix, UDR selection), written to <sweep dir>/report/<name>.csv when the report is made
REPORT_TABLES = ("comparisons", "ranks", "variance", "spearman", "selection")


def report_tables(sweep_dir: Path) -> dict[str, tuple[list, list]]:
    """``{report/<name>: (columns, rows)}`` of each report table found in ``<sweep_dir>/report`` (numbers as
    numbers; empty cells as None)."""
    out = {}
    for name in REPORT_TABLES:
        path = Path(sweep_dir) / "report" / f"{name}.csv"
        if path.exists():
            with open(path, newline="") as f:
                lines = list(csv.reader(f))
            if lines:
                out[f"report/{name}"] = (lines[0], [[_number(v) for v in line] for line in lines[1:]])
    return out


def _number(text: str):
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return text
    return None if math.isnan(value) else value


def log_to_wandb(summary: dict, sweep_dir: Path, project: str, entity: str | None = None,
                 group: str | None = None) -> Path | None:
    """One W&B run (job type ``sweep-summary``): config = the sweep's directory, axes (``sweep_axes``)
    and jobs; values = the job table (``sweep_summary``), the cell table (``cells``) and, per cell,
    ``<metric>_mean/<cell>`` and ``udr_<variant>/<cell>`` (means over that cell's seeds; ``<cell>``: its
    overrides that the other cells do not share, ``cell_labels``), and the report's tables where the sweep has
    one (``report_tables``: ``report/comparisons``, ...). W&B's settings:
    ``dislab.trackers.wandb.defaults``. Returns its local run directory."""
    group = group or sweep_dir.name
    table = summary["table"]
    config = {"sweep_dir": str(sweep_dir), "axes": sweep_axes(summary["runs"]), "jobs": len(table)}
    cols = list(table[0]) if table else []
    data = [[(None if isinstance(v, float) and math.isnan(v) else v) for v in row.values()] for row in table]
    cell_cols, cells = cell_table(summary)
    labels, values = cell_labels(summary["runs"]), {}
    for row in cells:
        label = labels[row[0]]
        for c, v in zip(cell_cols[2:], row[2:], strict=True):
            if v is not None and c.endswith("_mean"):
                values[f"{c.removesuffix('_mean') if c.startswith('udr_') else c}/{label}"] = v
    done = [r for r in summary["runs"] if r.status == "done"]
    values.update(jobs=len(table), done=len(done), failed=len(table) - len(done))
    tables = {"sweep_summary": (cols, data), "cells": (cell_cols, cells), **report_tables(sweep_dir)}
    return log_run(sweep_dir, config, tables, values,
                   project=project, entity=entity, group=group, name=f"{group}-summary", job_type="sweep-summary")
