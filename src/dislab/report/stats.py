"""The statistics a study's report states, as plain functions of numbers (numpy, scipy).

- ``compare``: one method or setting against a baseline on one metric, paired by seed: the mean of the
  per-seed differences, a percentile bootstrap confidence interval of that mean (``RESAMPLES`` resamples
  of the seeds, a fixed generator seed, so the page is the same every time) and the two-sided Wilcoxon
  signed-rank test of the differences (``scipy.stats.wilcoxon``). Its ``sentence`` names a winner only
  when the interval excludes zero and at least ``MIN_SEEDS`` seeds are paired; below that it says the
  seeds are too few to decide.
- ``ranks``: per metric, the methods ranked by their mean (1 = best; ties share the mean rank).
- ``variance_shares``: how much of a metric's spread is the method, the setting within a method, and the
  seed: the sums of squares of a nested (hierarchical) one-way ANOVA, as shares of the total.
- ``spearman_matrix``: Spearman rank correlations between metrics across runs (each pair over the runs that
  have both).
- ``selection``: an unsupervised criterion (UDR) against a supervised metric: their rank correlation, and
  the percentile of the supervised metric at which the run the criterion ranks first scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_SEEDS = 5        # paired seeds below which no winner is named
RESAMPLES = 10_000   # bootstrap resamples
LEVEL = 0.95         # the interval's coverage
RNG_SEED = 0         # the bootstrap's generator seed
TEST = "two-sided Wilcoxon signed-rank test of the per-seed differences"


def paired(base: dict, other: dict) -> tuple[list, np.ndarray]:
    """The seeds both have a finite value for, and ``other - base`` on each (seed order)."""
    seeds = sorted(s for s in base.keys() & other.keys()
                   if _finite(base[s]) and _finite(other[s]))
    return seeds, np.array([float(other[s]) - float(base[s]) for s in seeds])


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def bootstrap_ci(diffs, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = RNG_SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``diffs`` (resampling the seeds with replacement)."""
    d = np.asarray(diffs, dtype=float)
    if len(d) == 0:
        return float("nan"), float("nan")
    means = d[np.random.default_rng(seed).integers(0, len(d), (resamples, len(d)))].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def wilcoxon_p(diffs) -> float:
    """The p-value of ``TEST`` (exact for small n without ties, scipy's default); NaN where it is undefined
    (no pair, or every difference zero)."""
    from scipy.stats import wilcoxon

    d = np.asarray(diffs, dtype=float)
    if len(d) == 0 or not np.any(d != 0):
        return float("nan")
    return float(wilcoxon(d).pvalue)


@dataclass
class Comparison:
    metric: str
    label: str        # the method or setting compared
    baseline: str
    direction: str    # ↑ ↓ · ? (dislab.report.study.direction)
    seeds: list
    diff: float       # mean of label - baseline over the paired seeds
    low: float
    high: float
    p: float

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def decided(self) -> bool:
        """The interval excludes zero and enough seeds are paired."""
        return self.n >= MIN_SEEDS and (self.low > 0 or self.high < 0)

    @property
    def winner(self) -> str | None:
        """The better of the two, where ``decided`` and the metric has a direction."""
        if not self.decided or self.direction not in ("↑", "↓"):
            return None
        return self.label if (self.diff > 0) == (self.direction == "↑") else self.baseline

    def interval(self) -> str:
        return f"{self.diff:+.3f} ({LEVEL:.0%} CI [{self.low:+.3f}, {self.high:+.3f}], n={self.n} seeds"  \
               + (f", p={self.p:.3g})" if not math.isnan(self.p) else ")")

    @property
    def verdict(self) -> str:
        """What the comparison shows, without its numbers (the page's tables show those beside it)."""
        if self.n == 0:
            return "No seed in common: no paired comparison."
        if self.n < MIN_SEEDS:
            return f"{self.n} seed{'s' if self.n > 1 else ''}: too few to decide (at least {MIN_SEEDS} are needed)."
        if not self.decided:
            return "The interval includes 0: no difference is shown."
        side = "higher" if self.diff > 0 else "lower"
        if self.winner is None:
            return f"{self.label} scores {side} (this metric has no better side)."
        return f"{self.winner} is better: the interval excludes 0."

    @property
    def sentence(self) -> str:
        what = f"{self.label} − {self.baseline} on {self.metric}"
        if self.n == 0:
            return f"{self.label} and {self.baseline} share no seed with a {self.metric} score: no paired comparison."
        if self.n < MIN_SEEDS:
            return (f"{what}: {self.interval()}. {self.n} paired seed{'s' if self.n > 1 else ''} are too few to "
                    f"decide (at least {MIN_SEEDS} are needed); no winner is named.")
        if not self.decided:
            return f"{what}: {self.interval()}. The interval includes 0: no difference is shown."
        side = "higher" if self.diff > 0 else "lower"
        if self.winner is None:
            return f"{what}: {self.interval()}. {self.label} scores {side} ({self.metric} has no better side)."
        return (f"{what}: {self.interval()}. {self.winner} is better ({self.label} scores {side}; the interval "
                f"excludes 0).")


def compare(metric: str, label: str, baseline: str, direction: str, base: dict, other: dict) -> Comparison:
    """``other`` against ``base`` ({seed: score}) on ``metric``, paired by seed."""
    seeds, d = paired(base, other)
    low, high = bootstrap_ci(d)
    return Comparison(metric, label, baseline, direction, seeds, float(d.mean()) if len(d) else float("nan"),
                      low, high, wilcoxon_p(d))


def ranks(means: dict[str, float], direction: str) -> dict[str, float]:
    """Rank of each name by its mean (1 = best: highest for ↑ and unknown directions, lowest for ↓); ties share
    the mean of their ranks; names without a finite mean are left out."""
    from scipy.stats import rankdata

    names = [k for k, v in means.items() if _finite(v)]
    if not names:
        return {}
    sign = 1.0 if direction == "↓" else -1.0
    r = rankdata([sign * means[k] for k in names], method="average")
    return {k: float(v) for k, v in zip(names, r, strict=True)}


def variance_shares(records) -> dict[str, float]:
    """Nested one-way ANOVA of ``records`` ((method, setting, value) per run): the shares of the total sum of
    squares between methods (Σ_m n_m (ȳ_m − ȳ)²), between settings within a method (Σ_ms n_ms (ȳ_ms − ȳ_m)²)
    and between seeds of one setting (Σ (y − ȳ_ms)²). They add up to 1; NaN where the scores do not vary."""
    rows = [(m, s, float(v)) for m, s, v in records if _finite(v)]
    y = np.array([v for _, _, v in rows])
    out = {"n": len(rows), "method": float("nan"), "setting": float("nan"), "seed": float("nan")}
    if len(rows) < 2:
        return out
    grand = y.mean()
    total = float(((y - grand) ** 2).sum())
    if total <= 0:
        return out
    by_m: dict = {}
    by_ms: dict = {}
    for m, s, v in rows:
        by_m.setdefault(m, []).append(v)
        by_ms.setdefault((m, s), []).append(v)
    ss_m = sum(len(v) * (np.mean(v) - grand) ** 2 for v in by_m.values())
    ss_s = sum(len(v) * (np.mean(v) - np.mean(by_m[m])) ** 2 for (m, _), v in by_ms.items())
    ss_e = sum(((np.array(v) - np.mean(v)) ** 2).sum() for v in by_ms.values())
    out.update(method=float(ss_m / total), setting=float(ss_s / total), seed=float(ss_e / total))
    return out


def spearman(x, y) -> tuple[float, int]:
    """Spearman's ρ over the pairs where both are finite (``scipy.stats.spearmanr``) and their number; NaN
    below 3 pairs or where one side is constant."""
    from scipy.stats import spearmanr

    pairs = [(a, b) for a, b in zip(x, y, strict=True) if _finite(a) and _finite(b)]
    if len(pairs) < 3:
        return float("nan"), len(pairs)
    a, b = map(np.array, zip(*pairs, strict=True))
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan"), len(pairs)
    return float(spearmanr(a, b).statistic), len(pairs)


def spearman_matrix(table: dict[str, list]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``table``: metric -> its value per run (the same run order, None where missing). Returns the metrics,
    the matrix of ρ and the matrix of the numbers of runs each ρ is over."""
    keys = list(table)
    rho = np.full((len(keys), len(keys)), np.nan)
    n = np.zeros((len(keys), len(keys)), dtype=int)
    for i, a in enumerate(keys):
        for j, b in enumerate(keys):
            rho[i, j], n[i, j] = spearman(table[a], table[b])
    return keys, rho, n


@dataclass
class Selection:
    criterion: str
    metric: str
    rho: float
    n: int
    picked: int | None    # index of the run the criterion ranks first
    percentile: float     # the metric's percentile at which that run scores (100: the best run)

    @property
    def sentence(self) -> str:
        if self.picked is None:
            if self.n:
                return f"{self.criterion} is the same for all {self.n} runs that have {self.metric}: it selects none."
            return f"No run has both {self.criterion} and {self.metric}: nothing to select."
        rho = "undefined (a constant side or fewer than 3 runs)" if math.isnan(self.rho) else f"{self.rho:+.2f}"
        return (f"The run {self.criterion} ranks first scores at the {self.percentile:.0f}th percentile of "
                f"{self.metric} among the {self.n} runs that have both (a random pick: the 50th on average); "
                f"Spearman ρ between them: {rho}.")


def selection(criterion: str, metric: str, direction: str, crit: list, scores: list) -> Selection:
    """The run with the highest ``crit`` and where its ``scores`` value lies among all runs' (the share of runs
    it scores at least as well as: ≤ it for ↑ and unknown directions, ≥ it for ↓), with their Spearman ρ."""
    pairs = [(i, float(c), float(s)) for i, (c, s) in enumerate(zip(crit, scores, strict=True))
             if _finite(c) and _finite(s)]
    rho, n = spearman(crit, scores)
    if not pairs:
        return Selection(criterion, metric, rho, 0, None, float("nan"))
    if len({c for _, c, _ in pairs}) == 1:  # a constant criterion ranks no run first
        return Selection(criterion, metric, rho, len(pairs), None, float("nan"))
    picked, _, value = max(pairs, key=lambda p: p[1])
    values = np.array([s for _, _, s in pairs])
    share = np.mean(values >= value) if direction == "↓" else np.mean(values <= value)
    return Selection(criterion, metric, rho, n, picked, float(100 * share))
