"""``python -m dislab.report DIR [DIR ...] [--out OUT] [--reference NAME] [--baseline MODEL[:knob=value,...]]``:
explain a study in one HTML page.

DIRs are run or sweep directories, in any mix. The page opens with what the runs share (data set and
where its data came from: procedural, or the file with its size and sha256, with a warning where a
procedural rendering stands in for a published file; network, knobs), the budgets, each metric's settings
(sample sizes) and which direction is better for each metric. Then, for each training budget separately
(runs of different lengths are never pooled): a table of every metric as mean ± std over seeds per model x
setting of the knobs that differ (``dislab.report.study``), with the untrained network's score beside it
(and UDR over fewer seeds per cell than ``dislab.metrics.udr.MIN_SEEDS`` marked as such); the comparisons
against the baseline and the analyses (``dislab.report.analyses``: paired differences with a bootstrap
interval and a Wilcoxon test, ranks, variance shares, Spearman matrix, UDR selection); per metric each
model's scores (points; a violin only from 5 points on); per model the metrics against its first
differing knob; the training curves of all models overlaid (``history.csv``: mean over each model's runs,
band from lowest to highest); one axis per metric ([0, 1] where bounded) in every figure; and each run's
pictures. Runs that did not finish are listed with their error; every run with its tracker runs.
``--reference NAME`` (``dislab/report/references/NAME.py``, e.g. ``lin2020``) adds our distributions
beside published numbers, each with its source. Writes ``report.html``, ``table.csv``, the analyses'
CSVs (``comparisons``, ``ranks``, ``variance``, ``spearman``, ``selection``; with a reference
``reference.csv``) and PNGs into OUT (default: DIR/report for one DIR, else ./report).
"""

from __future__ import annotations

import argparse
import csv
import html
import io
import json
import os
import re
import sys
import urllib.parse
from pathlib import Path

from dislab.report import analyses, plots, study
from dislab.report.study import Row, budget_label, direction, fmt_stats, fmt_value, stats
from dislab.rundir import METRICS
from dislab.sweep.runs import finite, order_metrics

UDR_KEYS = ("udr_lasso", "udr_spearman")
PICTURES = ("traversals.png", "traversals.gif", "reconstructions.png", "samples.png", "kl.png", "mi_heatmap.png")
e = html.escape


def attach_udr(runs) -> dict[Path, tuple[int, str]]:
    """Copy each run's UDR scores from its sweep's ``udr.json`` into ``run.metrics``. Returns, per run whose
    cell had too few seeds for UDR to mean much, (its cell's seeds, ``dislab.metrics.udr.seeds_warning``)."""
    cache: dict[Path, tuple[dict, dict]] = {}
    notes = {}
    for r in runs:
        f = r.dir.parent / "udr.json"
        if f not in cache:
            saved = json.loads(f.read_text()) if f.exists() else {}
            seeds = {p: len(c.get("runs", [])) for c in saved.get("cells", []) for p in c.get("runs", [])}
            cache[f] = saved.get("runs", {}), seeds
        scores, seeds = cache[f]
        mine = scores.get(r.dir.name) or scores.get(str(r.dir)) or {}
        if r.status == "done" and any(k in UDR_KEYS for k in mine):
            r.metrics.update({k: v for k, v in mine.items() if k in UDR_KEYS})
            from dislab.metrics.udr import seeds_warning

            n = seeds.get(r.dir.name) or seeds.get(str(r.dir)) or 0
            if seeds_warning(n):
                notes[r.dir] = n, seeds_warning(n)
    return notes


def data_sources(runs) -> list[tuple[dict | None, int]]:
    """Each distinct source of the finished runs' data (``metrics.json`` ``data``: ``dislab.data.source``; None
    where it was not recorded) with the number of runs that read it."""
    found: dict[str, list] = {}
    for r in runs:
        if r.status != "done":
            continue
        try:
            src = json.loads((r.dir / METRICS).read_text()).get("data")
        except (OSError, ValueError):
            src = None
        found.setdefault(json.dumps(src, sort_keys=True), [src, 0])[1] += 1
    return [(src, n) for src, n in found.values()]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _href(path: Path, out: Path) -> str:
    return urllib.parse.quote(Path(os.path.relpath(path, out)).as_posix())


def _head(key: str) -> str:
    d = direction(key)
    return f"<th title='{e(study.DIRECTION_WORDS[d])}'>{e(key)} <span class='dir'>{d}</span></th>"


def _cell(row: Row, key: str, udr_notes: dict | None = None) -> str:
    text = fmt_stats(*stats(row.values(key)))
    base = row.values(key, untrained=True)
    if base:
        text += f"<br><span class='u'>untrained {fmt_stats(*stats(base))}</span>"
    notes = sorted({udr_notes[r.dir] for r in row.done if r.dir in udr_notes}) if key in UDR_KEYS and udr_notes else []
    if notes:  # the cell's UDR compares each run with too few other seeds
        text += (f"<br><span class='bad' title='{e('; '.join(w for _, w in notes))}'>over {notes[0][0]} seeds: "
                 f"too few</span>")
    return f"<td>{text}</td>"


def _write_csv(path: Path, rows: list[dict]) -> None:
    from dislab import atomic

    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    for r in rows:
        w.writerow({k: repr(v) if isinstance(v, float) else v for k, v in r.items()})
    atomic.write_text(path, buf.getvalue())


CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1500px}
.scroll{overflow-x:auto}table{border-collapse:collapse;font-size:13px;margin:8px 0 20px;white-space:nowrap}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right;vertical-align:top}th{background:#f3f3f3}
td.l,th.l{text-align:left}tr.first td{border-top:2px solid #888}.u{color:#888;font-size:11px}
.dir{color:#06c}.win{color:#060;font-weight:600}td.s{white-space:normal;min-width:420px}
img.fig{max-width:100%;border:1px solid #ddd;margin:6px 0}.bad{color:#b00}code{font-size:12px}
.warn{background:#fff4e0;border-left:4px solid #e90;padding:6px 10px;margin:8px 0}
figure.run{display:inline-block;width:120px;margin:4px 8px 8px 0;font-size:11px;text-align:center;vertical-align:top}
figure.run img{width:120px;border:1px solid #ddd;display:block}h2{margin-top:34px;border-bottom:1px solid #ccc}
ol.sources{font-size:12px;color:#444}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:2px 14px;font-size:14px}dt{font-weight:600}"""


def _data_fact(sources: list[tuple[dict | None, int]]) -> str:
    from dislab.data.source import describe

    names = [src.get("dataset") for src, _ in sources if src]
    lines = []
    for src, n in sources:
        line = f"{e(src.get('dataset') or '?')}: {e(describe(src))}" if src else "not recorded in metrics.json"
        line += f" ({n} run{'s' if n > 1 else ''})" if len(sources) > 1 else ""
        if src and names.count(src.get("dataset")) > 1:
            line += " <span class='bad'>(the same data set from different sources)</span>"
        lines.append(line)
    return "<br>".join(lines)


def header(runs, groups, keys, paths) -> list[str]:
    done = [r for r in runs if r.status == "done"]
    sources = data_sources(runs)
    table = {r.dir: study.knobs(r) for r in runs}

    def fixed(subset) -> dict:
        """Knobs every run of ``subset`` has, with one value, that are not among the differing ones."""
        common = set.intersection(*(set(table[r.dir]) for r in subset)) - set(keys)
        return {k: table[subset[0].dir][k] for k in table[subset[0].dir] if k in common
                and len({json.dumps(table[r.dir][k], sort_keys=True, default=str) for r in subset}) == 1}

    shared = fixed(runs)
    models = sorted({r.model for r in runs})
    per_model = {m: {k: v for k, v in fixed([r for r in runs if r.model == m]).items() if k not in shared}
                 for m in models}
    facts = {
        "runs": e(f"{len(runs)} ({len(done)} finished) of {len(models)} model(s): {', '.join(models)}"),
        "from": ", ".join(f"<code>{e(str(p))}</code>" for p in paths),
        "data set": e(", ".join(sorted({str(t.get("dataset")) for t in table.values()}))),
        **({"data": _data_fact(sources)} if sources else {}),
        "budgets": e(", ".join(f"{budget_label(b)} ({sum(len(r.runs) for r in rows)} runs)"
                               for b, rows in groups.items())) + (" <b>(kept apart)</b>" if len(groups) > 1 else ""),
        "knobs that differ": e(", ".join(keys) or "none"),
        "shared by all runs": e(", ".join(f"{k}={fmt_value(v)}" for k, v in shared.items() if k != "dataset")),
        **{f"fixed for {m}": e(", ".join(f"{k}={fmt_value(v)}" for k, v in kv.items())) for m, kv in per_model.items()
           if kv},
    }
    h = ["<dl class='facts'>"] + [f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in facts.items()] + ["</dl>"]
    from dislab.data.source import stand_in_warning

    h += [f"<p class='warn'>{e(w)}</p>" for w in dict.fromkeys(stand_in_warning(src) for src, _ in sources) if w]
    settings = study.settings_summary(done)
    if settings:
        h.append("<h3>Metric settings (sample sizes)</h3><table><tr><th class='l'>metric</th>"
                 "<th class='l'>settings</th><th>runs</th></tr>")
        for name, variants in settings.items():
            flag = " <span class='bad'>(differ between runs)</span>" if len(variants) > 1 else ""
            for i, (text, n) in enumerate(variants.items()):
                h.append(f"<tr><td class='l'>{e(name) + flag if i == 0 else ''}</td><td class='l'><code>{e(text)}"
                         f"</code></td><td>{n}</td></tr>")
        h.append("</table>")
    h.append("<p>" + "; ".join(f"<span class='dir'>{d}</span> {e(w)}" for d, w in study.DIRECTION_WORDS.items())
             + ". <span class='u'>untrained</span>: the same network before training, scored the same way.</p>")
    return h


def _n(values) -> str:
    return f"n={len(values)}"


def _limits(rows: list[Row], key: str) -> tuple[float, float] | None:
    """The y-range of ``key`` in every figure of a budget: [0, 1] for a bounded score, else the range of all its
    values (trained and untrained) at that budget, so that one metric has one axis across panels."""
    bounded = study.bounds(key)
    if bounded:
        return bounded
    vals = [v for row in rows for u in (False, True) for v in row.values(key, u)]
    return (min(vals), max(vals)) if vals and max(vals) > min(vals) else None


def budget_section(b, rows: list[Row], metrics: list[str], out: Path, histories: dict,
                   udr_notes: dict | None = None, baseline: str = "") -> tuple[list[str], list, dict]:
    tag = "all" if b is None else str(b)
    h = [f"<h2 id='budget-{tag}'>{e(budget_label(b))}</h2>",
         "<h3>Mean ± std over seeds</h3><div class='scroll'><table class='summary'><tr><th class='l'>model</th>"
         "<th class='l'>knobs that differ</th><th>seeds</th>" + "".join(_head(k) for k in metrics) + "</tr>"]
    csv_rows, previous = [], None
    for row in rows:
        n = len(row.done)
        bad = f" <span class='bad'>({len(row.runs) - n} not finished)</span>" if n < len(row.runs) else ""
        first = " class='first'" if row.model != previous else ""
        previous = row.model
        h.append(f"<tr{first}><td class='l'>{e(row.model)}</td><td class='l'>{e(row.label)}</td><td>{n}{bad}</td>"
                 + "".join(_cell(row, k, udr_notes) for k in metrics) + "</tr>")
        rec = {"budget": b, "model": row.model, "hyperparameters": row.label, "seeds": n,
               "not_finished": len(row.runs) - n}
        for k in metrics:
            mean, std, cnt = stats(row.values(k))
            rec.update({f"{k}_mean": mean, f"{k}_std": std, f"{k}_n": cnt,
                        f"{k}_untrained_mean": stats(row.values(k, untrained=True))[0]})
        csv_rows.append(rec)
    h.append("</table></div>")
    parts, tables = analyses.section(b, rows, metrics, baseline)
    h += parts
    if not any(row.done for row in rows) or not metrics:
        return h, csv_rows, tables

    models = list(dict.fromkeys(row.model for row in rows))
    by_model = {m: [row for row in rows if row.model == m] for m in models}
    goals = [k for k in metrics if direction(k) != "·"]  # diagnostics stay in the tables
    pooled, limits = [], {k: _limits(rows, k) for k in goals}  # one axis per metric in every figure
    for k in goals:
        per = [[v for row in by_model[m] for v in row.values(k)] for m in models]
        pooled.append(plots.Panel(f"{k} {direction(k)}", [f"{m}\n{_n(v)}" for m, v in zip(models, per, strict=True)],
                                  {"": per}, [[v for row in by_model[m] for v in row.values(k, True)] for m in models],
                                  ylim=limits[k]))
    if pooled:
        caption = (f"Each model over all its runs at {budget_label(b)} (every setting and seed): one point per run "
                   f"(n under each name), a violin where there are 5 or more; grey crosses: the untrained network; "
                   f"scores between 0 and 1 on that whole axis, any other metric on one axis in every figure of "
                   f"this budget")
        h.append(_figure(out, f"distributions_{tag}.png", plots.distributions(pooled, title=caption), caption,
                         "Scores per model"))
    for m in models:
        h += _model_figures(m, by_model[m], goals, out, b, limits)
    h += _curves(rows, out, b, histories)
    h.append("<h3>Pictures</h3><p class='u'>traversals of each run (click for full size); links to its other "
             "pictures.</p>")
    for row in rows:
        h.append(f"<div><b>{e(row.model)}</b> {e(row.label)}<br>")
        for r in row.runs:
            h.append(_thumb(r, out))
        h.append("</div>")
    return h, csv_rows, tables


def _figure(out: Path, name: str, png: bytes, caption: str, heading: str | None = None) -> str:
    """Write the figure; its HTML: a heading (``heading``, else the caption, which the figure also carries as its
    title) and the image."""
    from dislab import atomic

    atomic.write_bytes(out / name, png)
    return f"<h3>{e(heading or caption)}</h3><img class='fig' src='{e(name)}' alt='{e(caption)}'>"


def _model_figures(model: str, rows: list[Row], metrics, out: Path, budget, limits: dict) -> list[str]:
    h, tag = [], "all" if budget is None else str(budget)
    finished = [row for row in rows if row.done]
    within = study.differing([r for row in finished for r in row.done])
    if within and metrics:
        x_key = within[0]
        xs = sorted({json.dumps(row.settings.get(x_key), default=str): row.settings.get(x_key)
                     for row in finished}.values(), key=study._sort_key)

        def rest(row) -> str:
            return ", ".join(f"{k}={fmt_value(v)}" for k, v in row.settings.items() if k != x_key and k in within)

        panels = []
        for k in metrics:
            panel = {rest(row): plots.Line(rest(row) or None, {}) for row in finished}
            for row in finished:
                panel[rest(row)].by_x.setdefault(xs.index(row.settings.get(x_key)), []).extend(row.values(k))
            panels.append(list(panel.values()))
        seeds = sorted({len(row.done) for row in finished})
        caption = (f"{model} at {budget_label(budget)} against {x_key}: one point per seed "
                   f"({'-'.join(map(str, dict.fromkeys([seeds[0], seeds[-1]])))} per setting), the line through "
                   f"the means; one axis per metric, as in every figure of this budget")
        png = plots.versus([f"{k} {direction(k)}" for k in metrics], [fmt_value(x) for x in xs], x_key, panels,
                           [limits[k] for k in metrics], title=caption)
        h.append(_figure(out, f"model_{_safe(model)}_{tag}.png", png, caption, f"{model} against {x_key}"))
    return h


def _curves(rows: list[Row], out: Path, budget, histories: dict) -> list[str]:
    """Every model's training curves overlaid, one panel per logged quantity: the mean over the model's runs
    (every setting and seed) at each step, the band from the lowest to the highest run."""
    hist: dict[str, list] = {}
    for row in rows:
        hist.setdefault(row.model, []).extend(histories[r.dir] for r in row.done if histories.get(r.dir))
    keys = study.curve_keys([x for hs in hist.values() for x in hs])
    if not keys:
        return []
    panels = [[plots.Curve(m, *study.mean_curve([x for x in hs if k in x], k), n=sum(k in x for x in hs))
               for m, hs in hist.items() if any(k in x for x in hs)] for k in keys]
    caption = (f"Training curves of every model at {budget_label(budget)} (history.csv), overlaid per quantity: "
               f"the mean over each model's runs (every setting and seed; n in the legend), the band from the lowest "
               f"to the highest run")
    tag = "all" if budget is None else str(budget)
    return [_figure(out, f"curves_{tag}.png", plots.curves(keys, panels, budget, title=caption), caption,
                    "Training curves of every model")]


def _thumb(r, out: Path) -> str:
    pics = r.dir / "pictures"
    links = " ".join(f"<a href='{_href(pics / p, out)}'>{e(p.split('.')[0] if p != 'traversals.gif' else 'gif')}</a>"
                     for p in PICTURES[1:] if (pics / p).exists())
    seed = f"seed {r.seed}" + ("" if r.status == "done" else f" <span class='bad'>{e(r.status)}</span>")
    if (pics / PICTURES[0]).exists():
        img = f"<a href='{_href(pics / PICTURES[0], out)}'><img loading='lazy' src='{_href(pics / PICTURES[0], out)}'" \
              f" alt='traversals {e(str(r.dir))}'></a>"
    else:
        img = "<div class='u' style='width:120px'>(no pictures)</div>"
    return f"<figure class='run'>{img}<figcaption>{seed}<br>{links}</figcaption></figure>"


def _tracker(r, out: Path) -> str:
    """Links to the run's tracker runs: W&B (its id and local folder), MLflow (its id), TensorBoard (its folder)."""
    from dislab.trackers.wandb import run_id, segments

    links = []
    wid = run_id(r.dir)
    if wid:
        links.append(f"<a href='{_href(segments(r.dir)[-1].parent, out)}'>W&amp;B {e(wid)}</a>")
    mlflow = r.dir / "mlflow_run_id"
    if mlflow.exists():
        links.append(f"MLflow {e(mlflow.read_text().strip())}")
    if (r.dir / "tensorboard").is_dir():
        links.append(f"<a href='{_href(r.dir / 'tensorboard', out)}'>TensorBoard</a>")
    return " ".join(links) or "<span class='u'>none</span>"


def build(paths, out=None, reference: str | None = None, baseline: str | None = None) -> Path:
    from dislab import atomic

    ref = None
    if reference:
        from dislab.report.references import load

        ref = load(reference)  # before anything is written
    paths = [Path(p) for p in paths]
    out = Path(out) if out else (paths[0] / "report" if len(paths) == 1 else Path("report"))
    runs = study.load(paths)
    if not runs:
        raise SystemExit(f"error: no run directories (with .hydra/config.yaml) under {', '.join(map(str, paths))}")
    udr_notes = attach_udr(runs)
    groups, keys = study.group(runs)
    baseline = baseline or analyses.default_baseline(groups)
    analyses.check_baseline(groups, baseline)  # a ValueError before anything is written
    done = [r for r in runs if r.status == "done"]
    metrics = sorted(order_metrics({k for r in done for k in r.metrics}), key=lambda k: direction(k) == "·")
    out.mkdir(parents=True, exist_ok=True)
    histories = {r.dir: study.read_history(r) for r in done}

    h = ["<!doctype html><html><head><meta charset='utf-8'><title>dislab report</title>",
         f"<style>{CSS}</style></head><body><h1>dislab report</h1>", *header(runs, groups, keys, paths)]
    if len(groups) > 1:
        h.append("<p>Budgets: " + " · ".join(f"<a href='#budget-{'all' if b is None else b}'>{e(budget_label(b))}</a>"
                                             for b in groups) + "</p>")
    if ref is not None:
        from dislab.report.reproduction import section

        parts, ref_rows = section(ref, groups, runs, lambda name, png, caption: _figure(out, name, png, caption))
        h += parts
        _write_csv(out / "reference.csv", ref_rows)
    csv_rows, tables = [], {t: [] for t in analyses.TABLES}
    for b, rows in groups.items():
        parts, rows_csv, found = budget_section(b, rows, metrics, out, histories, udr_notes, baseline)
        h += parts
        csv_rows += rows_csv
        for t, table in found.items():
            tables[t] += table
    for t, table in tables.items():
        if table:
            _write_csv(out / f"{t}.csv", table)
    failed = [r for r in runs if r.status != "done"]
    if failed:
        h.append("<h2>Runs that did not finish</h2><table><tr><th class='l'>run</th><th class='l'>model</th>"
                 "<th class='l'>budget</th><th class='l'>status</th><th class='l'>error</th></tr>")
        h += [f"<tr><td class='l'><code>{e(str(r.dir))}</code></td><td class='l'>{e(r.model)}</td>"
              f"<td class='l'>{e(budget_label(study.budget(r)))}</td><td class='l bad'>{e(r.status)}</td>"
              f"<td class='l'>{e(r.error or '(no error recorded)')}</td></tr>" for r in failed]
        h.append("</table>")
    h.append("<details><summary>Every run</summary><div class='scroll'><table><tr><th class='l'>run</th>"
             "<th class='l'>model</th><th class='l'>overrides</th><th>seed</th><th class='l'>budget</th>"
             "<th class='l'>status</th><th class='l'>tracker run</th>" + "".join(_head(k) for k in metrics) + "</tr>")
    for r in runs:
        h.append(f"<tr id='{analyses.anchor(r.dir)}'><td class='l'><a href='{_href(r.dir, out)}'><code>"
                 f"{e(str(r.dir))}</code></a></td>"
                 f"<td class='l'>{e(r.model)}</td><td class='l'>{e(' '.join(r.overrides))}</td>"
                 f"<td>{e(str(r.seed))}</td>"
                 f"<td class='l'>{e(budget_label(study.budget(r)))}</td><td class='l'>{e(r.status)}</td>"
                 f"<td class='l'>{_tracker(r, out)}</td>"
                 + "".join(f"<td>{fmt_stats(*stats(finite([r.metrics.get(k)])))}</td>" for k in metrics) + "</tr>")
    h.append("</table></div></details></body></html>")
    _write_csv(out / "table.csv", csv_rows)
    return atomic.write_text(out / "report.html", "\n".join(h) + "\n")


def main(argv=None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    ap = argparse.ArgumentParser(prog="python -m dislab.report", description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+", help="run or sweep directories")
    ap.add_argument("--out", help="output directory (default: DIR/report for one DIR, else ./report)")
    ap.add_argument("--baseline", help="what every method or setting is compared with: a model (its smallest "
                                       "setting) or model:knob=value,... (default: vae if it ran, else beta_vae)")
    ap.add_argument("--reference", help="lay published numbers beside ours: a module of dislab/report/references "
                                        "(e.g. lin2020)")
    args = ap.parse_args(argv)
    try:
        if args.reference:
            from dislab.report.references import load

            load(args.reference)  # an unknown name: one line, nothing written
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        path = build(args.dirs, args.out, args.reference, args.baseline)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"report: {path.resolve()}")
    return 0
