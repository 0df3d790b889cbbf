"""The study's questions, answered per training budget (``dislab.report.stats`` does the numbers):

1. Comparisons: each method or setting (a report row) against the baseline row, on each metric with a
   direction, paired by seed; the methods ranked per metric.
2. Where a score's spread comes from: method, setting within a method, seed.
3. Whether the metrics agree: Spearman's ρ between metrics across every run of the budget.
4. Whether UDR selects models the supervised metrics rate well.

Each part is an HTML block with a sentence saying what it shows, and the rows of a CSV table
(``comparisons.csv``, ``ranks.csv``, ``variance.csv``, ``spearman.csv``, ``selection.csv``) that the sweep's
summary run also carries.
"""

from __future__ import annotations

import math
import re
from html import escape as e

import numpy as np

from dislab.report import stats
from dislab.report.study import Row, direction, fmt_value

UDR = ("udr_lasso", "udr_spearman")
TABLES = ("comparisons", "ranks", "variance", "spearman", "selection")


def anchor(path) -> str:
    """The id of a run's row in the page's table of every run (what a picked run links to)."""
    return "run-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", str(path))


def name(row: Row) -> str:
    """A row as the report names it: the model, and its setting where the model has several."""
    return row.model + (f" ({row.label})" if row.settings else "")


def default_baseline(groups: dict) -> str:
    """The VAE where it ran, else β-VAE (its first row: the smallest β), else the first model."""
    models = [row.model for rows in groups.values() for row in rows]
    return next((m for m in ("vae", "beta_vae") if m in models), models[0] if models else "")


def _matches(row: Row, spec: str) -> bool:
    model, _, setting = spec.partition(":")
    if row.model != model.strip():
        return False
    for part in filter(None, (p.strip() for p in setting.split(","))):
        key, _, value = part.partition("=")
        if key.strip() not in row.settings or fmt_value(row.settings[key.strip()]) != value.strip():
            return False
    return True


def baseline_row(rows: list[Row], spec: str) -> Row | None:
    """The first row (the smallest setting) that ``spec`` (``model`` or ``model:knob=value,...``) names."""
    return next((row for row in rows if _matches(row, spec)), None)


def check_baseline(groups: dict, spec: str) -> None:
    """A ``ValueError`` naming the choices where ``spec`` names no row at any budget."""
    rows = [row for rs in groups.values() for row in rs]
    if not any(_matches(row, spec) for row in rows):
        choices = list(dict.fromkeys([row.model for row in rows] + [
            f"{row.model}:{','.join(f'{k}={fmt_value(v)}' for k, v in row.settings.items())}"
            for row in rows if row.settings]))
        raise ValueError(f"--baseline {spec!r} names no model or setting of these runs; choose one of: "
                         f"{', '.join(choices)}")


def _by_seed(row: Row, key: str) -> dict:
    return {r.seed: r.metrics.get(key) for r in row.done}


def _fmt(v: float, digits: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def comparisons(rows: list[Row], metrics: list[str], base: Row) -> list[stats.Comparison]:
    return [stats.compare(k, name(row), name(base), direction(k), _by_seed(base, k), _by_seed(row, k))
            for k in metrics for row in rows if row is not base and row.done]


def method_ranks(rows: list[Row], metrics: list[str]) -> dict[str, tuple[dict, dict]]:
    """Per metric: (each model's mean over all its runs, its rank)."""
    out = {}
    for k in metrics:
        means = {}
        for m in dict.fromkeys(row.model for row in rows):
            vals = [v for row in rows if row.model == m for v in row.values(k)]
            means[m] = float(np.mean(vals)) if vals else float("nan")
        out[k] = means, stats.ranks(means, direction(k))
    return out


def section(b, rows: list[Row], metrics: list[str], spec: str) -> tuple[list[str], dict[str, list[dict]]]:
    """The budget's comparisons and analyses: HTML and the CSV tables' rows."""
    tag = "all" if b is None else str(b)
    goals = [k for k in metrics if direction(k) != "·"]
    tables: dict[str, list[dict]] = {t: [] for t in TABLES}
    done = [row for row in rows if row.done]
    if not goals or not done:
        return [], tables
    h = [f"<h2 id='comparisons-{tag}'>Comparisons ({e(_budget(b))})</h2>"]
    base = baseline_row(rows, spec)
    if base is None:
        h.append(f"<p class='warn'>The baseline {e(spec)} has no runs at this budget: no comparison.</p>")
    else:
        h.append(f"<p>Each method or setting against the baseline <b>{e(name(base))}</b>, per metric, paired by "
                 f"seed: the mean of the per-seed differences, its {stats.LEVEL:.0%} bootstrap interval "
                 f"({stats.RESAMPLES:,} resamples of the seeds, generator seed {stats.RNG_SEED}) and the "
                 f"p-value of a {e(stats.TEST)}. A winner is named only where the interval excludes 0 and at "
                 f"least {stats.MIN_SEEDS} seeds are paired. With few seeds read it beside p: at 5 seeds the smallest "
                 f"p the test can give is 0.0625 (every seed on one side), and a bootstrap interval over 5 seeds is "
                 f"narrower than it should be.</p>")
        h.append("<div class='scroll'><table class='comparisons'><tr><th class='l'>metric</th><th class='l'>"
                 "compared</th><th>seeds</th><th>difference</th><th>interval</th><th>p</th>"
                 "<th class='l'>what it shows</th></tr>")
        previous = None
        for c in comparisons(rows, goals, base):
            first = " class='first'" if c.metric != previous else ""
            previous = c.metric
            cls = "win" if c.winner else ("bad" if c.n < stats.MIN_SEEDS else "")
            h.append(f"<tr{first}><td class='l'>{e(c.metric)} <span class='dir'>{c.direction}</span></td>"
                     f"<td class='l'>{e(c.label)}</td><td>{c.n}</td><td>{_fmt(c.diff, 3)}</td>"
                     f"<td>[{_fmt(c.low)}, {_fmt(c.high)}]</td><td>{_fmt(c.p, 3)}</td>"
                     f"<td class='l s {cls}' title='{e(c.sentence)}'>{e(c.verdict)}</td></tr>")
            tables["comparisons"].append({"budget": b, "metric": c.metric, "compared": c.label,
                                          "baseline": c.baseline, "seeds": c.n, "difference": c.diff,
                                          "low": c.low, "high": c.high, "p": c.p, "winner": c.winner or "",
                                          "sentence": c.sentence})
        h.append("</table></div>")

    ranked = method_ranks(rows, goals)
    models = list(dict.fromkeys(row.model for row in done))
    h.append("<h3>Ranks per metric</h3><p>Each method's mean over all its runs at this budget (every setting "
             "and seed), ranked per metric (1 = best; ties share a rank).</p><div class='scroll'><table "
             "class='ranks'><tr><th class='l'>metric</th>" + "".join(f"<th>{e(m)}</th>" for m in models) + "</tr>")
    for k, (means, rank) in ranked.items():
        h.append(f"<tr><td class='l'>{e(k)} <span class='dir'>{direction(k)}</span></td>" + "".join(
            f"<td>{_fmt(rank.get(m), 1) if m in rank else '–'}<br><span class='u'>{_fmt(means[m])}</span></td>"
            for m in models) + "</tr>")
        for m in models:
            tables["ranks"].append({"budget": b, "metric": k, "model": m, "mean": means[m],
                                    "rank": rank.get(m, float("nan"))})
    h.append("</table></div>")

    h.append(f"<h2 id='analyses-{tag}'>Analyses ({e(_budget(b))})</h2>")
    h += _variance(b, rows, goals, tables)
    h += _agreement(b, done, goals, tables)
    h += _selection(b, done, goals, tables)
    return h, tables


def _budget(b) -> str:
    from dislab.report.study import budget_label

    return budget_label(b)


def _variance(b, rows: list[Row], goals: list[str], tables) -> list[str]:
    h = ["<h3>What a score depends on: method, setting, seed</h3><p>The share of each metric's spread (sum of "
         "squares about the mean of every run) between methods, between the settings of one method, and between "
         "the seeds of one setting: a nested one-way analysis of variance. With one setting per method the "
         "setting's share is 0; with one seed per setting the seed's is.</p><table class='variance'><tr>"
         "<th class='l'>metric</th><th>runs</th><th>method</th><th>setting within method</th><th>seed</th>"
         "<th class='l'>what it shows</th></tr>"]
    for k in goals:
        s = stats.variance_shares([(row.model, row.label, v) for row in rows for v in row.values(k)])
        shares = {part: s[part] for part in ("method", "setting", "seed")}
        if any(math.isnan(v) for v in shares.values()):
            sentence = "The scores do not vary (or fewer than 2 runs): nothing to share out."
        else:
            top = max(shares, key=shares.get)
            sentence = (f"Most of the spread of {k} is between {'methods' if top == 'method' else top + 's'} "
                        f"({shares[top]:.0%}).")
        h.append(f"<tr><td class='l'>{e(k)}</td><td>{s['n']}</td>" + "".join(
            f"<td>{_fmt(100 * v, 0) + '%' if not math.isnan(v) else '–'}</td>" for v in shares.values())
            + f"<td class='l s'>{e(sentence)}</td></tr>")
        tables["variance"].append({"budget": b, "metric": k, "runs": s["n"], **shares, "sentence": sentence})
    h.append("</table>")
    return h


def _color(rho: float) -> str:
    if math.isnan(rho):
        return "#fff"
    a = min(1.0, abs(rho))
    return f"rgba(0,90,200,{0.6 * a:.2f})" if rho > 0 else f"rgba(200,40,0,{0.6 * a:.2f})"


def _link(run) -> str:
    return f"<a href='#{anchor(run.dir)}'><code>{e(str(run.dir))}</code></a>" if run is not None else "–"


def _agreement(b, done: list[Row], goals: list[str], tables) -> list[str]:
    runs = [r for row in done for r in row.done]
    keys, rho, n = stats.spearman_matrix({k: [r.metrics.get(k) for r in runs] for k in goals})
    if len(keys) < 2:
        return []
    h = [f"<h3>Do the metrics agree?</h3><p>Spearman's rank correlation ρ between metrics across all {len(runs)} "
         "runs at this budget (every model, setting and seed; each pair over the runs that have both; blue: they "
         "rank runs alike, red: oppositely).</p><div class='scroll'><table class='spearman'><tr><th></th>"
         + "".join(f"<th>{e(k)}</th>" for k in keys) + "</tr>"]
    pairs = []
    for i, a in enumerate(keys):
        h.append(f"<tr><th class='l'>{e(a)}</th>" + "".join(
            f"<td style='background:{_color(rho[i, j])}' title='n={n[i, j]}'>{_fmt(rho[i, j], 2)}</td>"
            for j in range(len(keys))) + "</tr>")
        for j in range(i + 1, len(keys)):
            tables["spearman"].append({"budget": b, "a": a, "b": keys[j], "rho": float(rho[i, j]),
                                       "runs": int(n[i, j])})
            if not math.isnan(rho[i, j]):
                pairs.append((rho[i, j], a, keys[j]))
    h.append("</table></div>")
    if pairs:
        hi, lo = max(pairs), min(pairs)
        h.append(f"<p>The metrics that agree most: {e(hi[1])} and {e(hi[2])} (ρ = {hi[0]:+.2f}); least: "
                 f"{e(lo[1])} and {e(lo[2])} (ρ = {lo[0]:+.2f}).</p>")
    return h


def _selection(b, done: list[Row], goals: list[str], tables) -> list[str]:
    runs = [r for row in done for r in row.done]
    criteria = [k for k in UDR if any(k in r.metrics for r in runs)]
    supervised = [k for k in goals if k not in UDR and direction(k) in ("↑", "↓")]
    if not criteria or not supervised:
        return ["<h3>Does UDR pick good models?</h3><p class='u'>No UDR scores (a sweep with 2 or more seeds per "
                "setting has them) or no supervised metric at this budget.</p>"] if supervised else []
    h = ["<h3>Does UDR pick good models?</h3><p>Unsupervised model selection (UDR, Duan et al. 2020) against each "
         "supervised metric: Spearman's ρ across runs, and the percentile of the supervised metric at which the "
         "run with the highest UDR scores (100: the best run; choosing at random gives 50 on average).</p>"
         "<table class='selection'><tr><th class='l'>criterion</th><th class='l'>metric</th><th>runs</th>"
         "<th>ρ</th><th>percentile of the pick</th><th class='l'>picked run</th><th class='l'>what it shows</th></tr>"]
    for c in criteria:
        for k in supervised:
            s = stats.selection(c, k, direction(k), [r.metrics.get(c) for r in runs], [r.metrics.get(k) for r in runs])
            picked = runs[s.picked] if s.picked is not None else None
            h.append(f"<tr><td class='l'>{e(c)}</td><td class='l'>{e(k)} {direction(k)}</td><td>{s.n}</td>"
                     f"<td>{_fmt(s.rho, 2)}</td><td>{_fmt(s.percentile, 0)}</td><td class='l'>"
                     f"{_link(picked)}</td><td class='l s'>{e(s.sentence)}</td></tr>")
            tables["selection"].append({"budget": b, "criterion": c, "metric": k, "runs": s.n, "rho": s.rho,
                                        "percentile": s.percentile, "picked": str(picked.dir) if picked else "",
                                        "sentence": s.sentence})
    h.append("</table>")
    return h
