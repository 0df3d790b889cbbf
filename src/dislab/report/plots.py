"""The report's figures: pure functions from numbers to PNG bytes (matplotlib, Agg).

Every score is drawn as a point. A violin is added only where a group has ``MIN_VIOLIN`` or more
points: a density drawn from two or three seeds shows a shape the data do not have. A bounded metric
is drawn on its whole range (``ylim``, e.g. [0, 1]), so that 0.121 against 0.127 does not fill a panel,
and every figure carries a title of its own (``title``).
"""

from __future__ import annotations

import io
import textwrap
import warnings
from dataclasses import dataclass, field

import numpy as np

MIN_VIOLIN = 5  # points below which a group is drawn as points only (a strip plot)


@dataclass
class Panel:
    """One axis: a title and, per series (label -> one list of points per x position), the points."""
    title: str
    names: list[str]                                # x tick labels
    series: dict[str, list[list[float]]]            # label ("" for none) -> per x position: the points
    baseline: list[list[float]] = field(default_factory=list)  # per x position: untrained scores
    refs: list[tuple[int, float, str]] = field(default_factory=list)  # (x, published value, its source)
    ylim: tuple[float, float] | None = None         # the metric's whole range where it is bounded


def _grid(n: int, ncols: int = 4, height: float = 2.9, width: float = 3.6):
    import matplotlib.pyplot as plt

    cols = max(1, min(ncols, n))
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(max(width * cols, 5.0), height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _png(fig, bottom: float = 0.0, title: str | None = None) -> bytes:
    import matplotlib.pyplot as plt

    if title:  # the figure grows by the title's lines, so the panels keep their size
        text = textwrap.fill(title, int(fig.get_figwidth() * 13))
        height = fig.get_figheight()
        extra = 0.2 * (text.count("\n") + 1) + 0.15
        fig.set_figheight(height + extra)
        bottom *= height / (height + extra)
        fig.suptitle(text, fontsize=10)  # tight_layout makes room for it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fig.tight_layout(rect=(0, bottom, 1, 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def points(ax, x: float, vals, color="k", width: float = 0.7, rng=None, label=None) -> None:
    """A strip of points at ``x`` (jittered); with ``MIN_VIOLIN`` or more distinct points also a violin."""
    vals = np.asarray(vals, dtype=float)
    if len(vals) == 0:
        return
    if len(vals) >= MIN_VIOLIN and np.ptp(vals) > 0:
        parts = ax.violinplot([vals], positions=[x], widths=width, showextrema=False)
        for b in parts["bodies"]:
            b.set_facecolor(color)
            b.set_alpha(0.25)
    rng = rng or np.random.default_rng(0)
    jitter = rng.uniform(-0.15, 0.15, len(vals)) * width if len(vals) > 1 else np.zeros(1)
    ax.scatter(x + jitter, vals, s=14, color=color, alpha=0.8, zorder=3, label=label, edgecolors="none")


REF_COLORS = ("tab:red", "tab:purple", "tab:brown", "tab:pink")


def distributions(panels: list[Panel], ncols: int = 4, title: str | None = None) -> bytes:
    """Per panel: each series' points per x position (a violin where there are enough), the untrained
    scores as grey crosses and published values as bars, one colour per source."""
    import matplotlib.pyplot as plt

    wide = any(p.refs for p in panels)
    fig, axes = _grid(len(panels), ncols=ncols, height=3.4 if wide else 2.9, width=4.6 if wide else 3.6)
    colors = ["k"] + plt.rcParams["axes.prop_cycle"].by_key()["color"]
    sources = list(dict.fromkeys(src for p in panels for _, _, src in p.refs))
    rng = np.random.default_rng(0)
    for ax, p in zip(axes, panels, strict=True):
        k = max(1, len(p.series))
        width = 0.7 / k
        for j, (label, per_x) in enumerate(p.series.items()):
            off = (j - (k - 1) / 2) * width
            color = colors[j % len(colors)] if k > 1 else "k"
            for i, vals in enumerate(per_x):
                points(ax, i + off, vals, color, width=width, rng=rng, label=label if label and i == 0 else None)
        for i, base in enumerate(p.baseline):
            if base:
                ax.scatter([i + 0.38] * len(base), base, marker="x", s=18, color="0.55", zorder=2)
        for x, value, src in p.refs:
            color = REF_COLORS[sources.index(src) % len(REF_COLORS)]
            ax.hlines(value, x - 0.42, x + 0.42, color=color, lw=2.2, zorder=4)
        ax.set_xticks(range(len(p.names)), p.names, rotation=30 if len(p.names) > 3 else 0,
                      ha="right" if len(p.names) > 3 else "center", fontsize=8)
        ax.set_xlim(-0.6, len(p.names) - 0.4)
        ax.set_title(p.title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        if p.ylim:
            ax.set_ylim(*_padded(p.ylim))
        if ax.get_legend_handles_labels()[1]:
            ax.legend(fontsize=7, loc="best", frameon=False)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=REF_COLORS[i % len(REF_COLORS)], lw=2.2) for i in range(len(sources))]
    labels = [f"published: {s}" for s in sources]
    if any(b for p in panels for b in p.baseline):
        handles.append(Line2D([], [], color="0.55", marker="x", ls="none"))
        labels.append("the untrained network")
    bottom = 0.0
    if labels:
        fig.legend(handles, labels, loc="lower center", fontsize=8, frameon=False, ncol=min(3, len(labels)))
        bottom = min(0.3, 0.25 * -(-len(labels) // 3) / fig.get_figheight())
    return _png(fig, bottom, title)


def _padded(lim: tuple[float, float]) -> tuple[float, float]:
    """The range with a margin, so that points at its ends are whole."""
    pad = 0.03 * (lim[1] - lim[0])
    return lim[0] - pad, lim[1] + pad


@dataclass
class Line:
    label: str | None
    by_x: dict[int, list[float]]  # x position -> points


def versus(titles: list[str], xs: list[str], xlabel: str, lines: list[list[Line]],
           ylims: list | None = None, title: str | None = None) -> bytes:
    """Per panel (a metric): points at each x (a hyperparameter value; a violin where there are
    enough), and a line through the means per further setting."""
    import matplotlib.pyplot as plt

    fig, axes = _grid(len(titles))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    rng = np.random.default_rng(0)
    n = max(1, len(lines[0]) if lines else 1)
    width = 0.7 / n
    for ax, name, panel, ylim in zip(axes, titles, lines, ylims or [None] * len(titles), strict=True):
        if ylim:
            ax.set_ylim(*_padded(ylim))
        for j, line in enumerate(panel):
            color, off = colors[j % len(colors)], (j - (n - 1) / 2) * width
            pos = [i + off for i in sorted(line.by_x) if line.by_x[i]]
            for i in sorted(line.by_x):
                points(ax, i + off, line.by_x[i], color, width=width, rng=rng)
            means = [float(np.mean(line.by_x[i])) for i in sorted(line.by_x) if line.by_x[i]]
            label = textwrap.fill(line.label, int(fig.get_figwidth() * 10)) if line.label else None
            ax.plot(pos, means, "-", color=color, label=label, lw=1.2)
        ax.set_xticks(range(len(xs)), xs, fontsize=8)
        ax.set_xlim(-0.6, len(xs) - 0.4)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_title(name, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    bottom = 0.0
    if n > 1:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", fontsize=8, frameon=False)
        bottom = min(0.5, 0.18 * sum(lab.count("\n") + 1 for lab in labels) / fig.get_figheight())
    return _png(fig, bottom, title)


@dataclass
class Curve:
    label: str
    steps: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n: int  # runs


def curves(titles: list[str], panels: list[list[Curve]], xmax: float | None = None, title: str | None = None) -> bytes:
    """Per panel (a logged scalar): the mean over seeds against the step, the band from the lowest to
    the highest seed; every panel spans steps 0 to ``xmax`` (the budget) when given."""
    import matplotlib.pyplot as plt

    fig, axes = _grid(len(titles))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels_seen = list(dict.fromkeys(c.label for panel in panels for c in panel))  # one colour per label
    for ax, name, panel in zip(axes, titles, panels, strict=True):
        for c in panel:
            color = colors[labels_seen.index(c.label) % len(colors)]
            marker = "o" if len(c.steps) < 12 else None
            ax.plot(c.steps, c.mean, color=color, marker=marker, ms=3, lw=1.2, label=f"{c.label} (n={c.n})")
            if c.n > 1:
                ax.fill_between(c.steps, c.low, c.high, color=color, alpha=0.2, lw=0)
        if xmax:
            ax.set_xlim(-0.02 * xmax, 1.02 * xmax)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    found = {lab: h for ax in axes for h, lab in zip(*ax.get_legend_handles_labels(), strict=True)}
    handles, labels = list(found.values()), list(found)
    bottom = 0.0
    if labels:
        fig.legend(handles, labels, loc="lower center", fontsize=8, frameon=False, ncol=min(3, len(labels)))
        bottom = min(0.4, 0.2 * -(-len(labels) // 3) / fig.get_figheight())
    return _png(fig, bottom, title)
