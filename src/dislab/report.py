"""``python -m dislab.report DIR [DIR ...] [--out OUT]``: compare runs in one HTML page.

DIRs are run or sweep directories, in any mix. Each run's model and hyperparameters come from its
``.hydra/`` files: a hyperparameter is a key its ``overrides.yaml`` sets whose value (in
``config.yaml``, or the group option in ``hydra.yaml``) differs between the runs of one model,
except ``seed``; its scores from ``metrics.json`` and, when its sweep has one, ``udr.json``.
The report holds a table of every metric as mean ± std over seeds for each model × hyperparameter
setting, per model the metrics against the hyperparameter (box plots over seeds, mean line), and per
metric the distribution of every model over all its runs (violins, as in Locatello et al. 2019).
Writes ``report.html``, ``table.csv`` and PNGs into OUT (default: DIR/report for one DIR, else
./report).
"""

from __future__ import annotations

import argparse
import html
import io
import json
import re
import sys
import textwrap
from pathlib import Path

import numpy as np

from dislab.sweep.runs import Run, find_runs, finite, hyperparameters, order_metrics, value_of

UDR_KEYS = ("udr_lasso", "udr_spearman")


def attach_udr(runs: list[Run]) -> None:
    """Copy each run's UDR scores from its sweep's ``udr.json`` into ``run.metrics``."""
    cache: dict[Path, dict] = {}
    for r in runs:
        f = r.dir.parent / "udr.json"
        if f not in cache:
            cache[f] = json.loads(f.read_text()).get("runs", {}) if f.exists() else {}
        scores = cache[f].get(r.dir.name) or cache[f].get(str(r.dir)) or {}
        if r.status == "done":
            r.metrics.update({k: v for k, v in scores.items() if k in UDR_KEYS})


def fmt_value(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def _sort_key(v):
    return (0, float(v), "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0.0, str(v))


class Model:
    """One model's runs, grouped into cells (one value per hyperparameter)."""

    def __init__(self, name: str, runs: list[Run]):
        self.name, self.runs = name, runs
        self.hparams = hyperparameters(runs)
        self.cells: dict[tuple, list[Run]] = {}
        for r in runs:
            self.cells.setdefault(tuple(value_of(r, k) for k in self.hparams), []).append(r)
        self.cells = dict(sorted(self.cells.items(), key=lambda kv: [_sort_key(v) for v in kv[0]]))

    def label(self, values: tuple) -> str:
        return ", ".join(f"{k}={fmt_value(v)}" for k, v in zip(self.hparams, values, strict=True)) or "(defaults)"


def stats(runs: list[Run], key: str) -> tuple[float, float, int]:
    vals = finite(r.metrics.get(key) for r in runs if r.status == "done")
    if not vals:
        return float("nan"), float("nan"), 0
    return float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0, len(vals)


def _grid(n: int, ncols: int = 4):
    import matplotlib.pyplot as plt

    cols = min(ncols, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(max(3.6 * cols, 5.0), 2.9 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _save(fig, path: Path, bottom: float = 0.0) -> Path:
    import warnings

    import matplotlib.pyplot as plt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig.tight_layout(rect=(0, bottom, 1, 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    from dislab import io as atomic

    return atomic.write_bytes(path, buf.getvalue())


def plot_distributions(models: list[Model], metrics: list[str], path: Path) -> Path:
    """Per metric: each model's scores over all its runs (hyperparameters and seeds) as a violin."""
    fig, axes = _grid(len(metrics))
    rng = np.random.default_rng(0)
    for ax, key in zip(axes, metrics, strict=True):
        data = [finite(r.metrics.get(key) for r in m.runs if r.status == "done") for m in models]
        for i, vals in enumerate(data):
            if len(vals) > 1 and np.ptp(vals) > 0:
                parts = ax.violinplot([vals], positions=[i], widths=0.8, showextrema=False)
                for b in parts["bodies"]:
                    b.set_alpha(0.35)
            if vals:
                ax.scatter(i + rng.uniform(-0.12, 0.12, len(vals)), vals, s=10, color="k", alpha=0.6, zorder=3)
        ax.set_xticks(range(len(models)), [m.name for m in models], rotation=30, ha="right", fontsize=8)
        ax.set_xlim(-0.6, len(models) - 0.4)
        ax.set_title(key, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_model(model: Model, metrics: list[str], path: Path) -> Path:
    """Per metric: score against the model's first hyperparameter, one box per value (spread over
    seeds) and a line through the means; further hyperparameters give further lines."""
    import matplotlib.pyplot as plt

    x_key = model.hparams[0] if model.hparams else None
    xs = sorted({v[0] for v in model.cells} if x_key else {None}, key=_sort_key)
    lines: dict[tuple, dict] = {}
    for values, runs in model.cells.items():
        lines.setdefault(values[1:], {})[values[0] if x_key else None] = runs
    fig, axes = _grid(len(metrics))
    rng = np.random.default_rng(0)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    width = 0.7 / max(1, len(lines))
    for ax, key in zip(axes, metrics, strict=True):
        for j, (rest, by_x) in enumerate(lines.items()):
            color = colors[j % len(colors)]
            off = (j - (len(lines) - 1) / 2) * width
            pos, means = [], []
            for i, x in enumerate(xs):
                vals = finite(r.metrics.get(key) for r in by_x.get(x, []) if r.status == "done")
                if not vals:
                    continue
                ax.boxplot([vals], positions=[i + off], widths=width * 0.8, patch_artist=True, showfliers=False,
                           boxprops={"facecolor": color, "alpha": 0.3}, medianprops={"color": color},
                           whiskerprops={"color": color}, capprops={"color": color})
                ax.scatter(i + off + rng.uniform(-0.06, 0.06, len(vals)) * width / 0.7, vals, s=8, color=color,
                           alpha=0.8, zorder=3)
                pos.append(i + off)
                means.append(np.mean(vals))
            label = ", ".join(f"{k}={fmt_value(v)}" for k, v in zip(model.hparams[1:], rest, strict=True)) or None
            label = textwrap.fill(label, int(fig.get_figwidth() * 10)) if label else None
            ax.plot(pos, means, "o-", color=color, label=label, ms=4)
        ax.set_xticks(range(len(xs)), [fmt_value(x) if x_key else "(defaults)" for x in xs], fontsize=8)
        ax.set_xlim(-0.6, len(xs) - 0.4)
        ax.set_xlabel(x_key or "", fontsize=9)
        ax.set_title(key, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    bottom = 0.0
    if len(lines) > 1:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", fontsize=8, frameon=False)
        bottom = min(0.5, 0.18 * sum(lab.count("\n") + 1 for lab in labels) / fig.get_figheight())
    return _save(fig, path, bottom)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _pm(mean: float, std: float, n: int) -> str:
    return "–" if n == 0 else f"{mean:.3f} ± {std:.3f}" if n > 1 else f"{mean:.3f}"


CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222}
.scroll{overflow-x:auto}table{border-collapse:collapse;font-size:13px;margin:8px 0 20px;white-space:nowrap}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}tr.first td{border-top:2px solid #888}
img{max-width:100%;border:1px solid #ddd;margin:6px 0}.bad{color:#b00}code{font-size:12px}"""


def build(paths, out=None) -> Path:
    paths = [Path(p) for p in paths]
    out = Path(out) if out else (paths[0] / "report" if len(paths) == 1 else Path("report"))
    runs = find_runs(paths)
    if not runs:
        raise SystemExit(f"error: no run directories (with .hydra/config.yaml) under {', '.join(map(str, paths))}")
    attach_udr(runs)
    by_model: dict[str, list[Run]] = {}
    for r in runs:
        by_model.setdefault(r.model, []).append(r)
    models = [Model(name, rs) for name, rs in sorted(by_model.items())]
    done = [r for r in runs if r.status == "done"]
    keys = {k for r in done for k in r.metrics}
    metrics = order_metrics(keys)
    out.mkdir(parents=True, exist_ok=True)

    images = []
    if metrics and done:
        images.append(("Each model over all its runs (every hyperparameter setting and seed)",
                       plot_distributions(models, metrics, out / "distributions.png")))
        for m in models:  # a model run with one setting only is all in the figure above
            if m.hparams and any(r.status == "done" for r in m.runs):
                images.append((f"{m.name} against {m.hparams[0]}: boxes show the spread over seeds, the line the mean",
                               plot_model(m, metrics, out / f"model_{_safe(m.name)}.png")))

    e = html.escape
    h = ["<!doctype html><html><head><meta charset='utf-8'><title>dislab report</title>",
         f"<style>{CSS}</style></head><body><h1>dislab report</h1>",
         f"<p>{len(runs)} runs ({len(done)} finished) of {len(models)} model(s) from "
         + ", ".join(f"<code>{e(str(p))}</code>" for p in paths) + ".</p>",
         "<h2>Mean ± std over seeds</h2><div class='scroll'><table id='summary'><tr><th class='l'>model</th>"
         "<th class='l'>hyperparameters</th><th>seeds</th>"
         + "".join(f"<th>{e(k)}</th>" for k in metrics) + "</tr>"]
    rows = []
    for m in models:
        for i, (values, cell) in enumerate(m.cells.items()):
            s = {k: stats(cell, k) for k in metrics}
            n = sum(r.status == "done" for r in cell)
            bad = f" <span class='bad'>({len(cell) - n} not finished)</span>" if n < len(cell) else ""
            h.append(f"<tr{' class=first' if i == 0 else ''}><td class='l'>{e(m.name)}</td>"
                     f"<td class='l'>{e(m.label(values))}</td><td>{n}{bad}</td>"
                     + "".join(f"<td>{_pm(*s[k])}</td>" for k in metrics) + "</tr>")
            rows.append({"model": m.name, "hyperparameters": m.label(values), "seeds": n,
                         **{f"{k}_{w}": s[k][j] for k in metrics for j, w in enumerate(("mean", "std"))}})
    h.append("</table></div>")
    for title, img in images:
        h.append(f"<h2>{e(title)}</h2><img src='{e(img.name)}' alt='{e(title)}'>")
    failed = [r for r in runs if r.status != "done"]
    if failed:
        h.append("<h2>Runs that did not finish</h2><table><tr><th class='l'>run</th><th class='l'>status</th>"
                 "<th class='l'>error</th></tr>")
        h += [f"<tr><td class='l'><code>{e(str(r.dir))}</code></td><td class='l bad'>{e(r.status)}</td>"
              f"<td class='l'>{e(r.error)}</td></tr>" for r in failed]
        h.append("</table>")
    h.append("<details><summary>Every run</summary><div class='scroll'><table><tr><th class='l'>run</th>"
             "<th class='l'>model</th><th class='l'>overrides</th><th>seed</th><th class='l'>status</th>"
             + "".join(f"<th>{e(k)}</th>" for k in metrics) + "</tr>")
    for r in runs:
        h.append(f"<tr><td class='l'><code>{e(str(r.dir))}</code></td><td class='l'>{e(r.model)}</td>"
                 f"<td class='l'>{e(' '.join(r.overrides))}</td><td>{e(str(r.seed))}</td>"
                 f"<td class='l'>{e(r.status)}</td>"
                 + "".join(f"<td>{_pm(*stats([r], k))}</td>" for k in metrics) + "</tr>")
    h.append("</table></div></details></body></html>")

    from dislab import io as atomic
    from dislab.sweep.summary import to_csv

    atomic.write_text(out / "table.csv", to_csv(rows))
    return atomic.write_text(out / "report.html", "\n".join(h) + "\n")


def main(argv=None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    ap = argparse.ArgumentParser(prog="python -m dislab.report", description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+", help="run or sweep directories")
    ap.add_argument("--out", help="output directory (default: DIR/report for one DIR, else ./report)")
    args = ap.parse_args(argv)
    try:
        path = build(args.dirs, args.out)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"report: {path.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
