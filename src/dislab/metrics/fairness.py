"""Fairness: how much a classifier's predictions of one factor move when another factor is intervened on.

Locatello et al. 2019, "On the Fairness of Disentangled Representations" (NeurIPS 2019), Sec. 4: a
classifier predicts a target factor y from the representation; its unfairness with respect to a
sensitive factor s is the total variation between the distribution of its predictions under the
intervention do(s = c) and their distribution over all interventions, averaged over the values c,
TV(p, q) = 1/2 sum_y |p(y) - q(y)|.

Checked against disentanglement_lib ``evaluation/metrics/fairness.py`` (``compute_fairness``,
``inter_group_fairness``, ``compute_scores_dict``) and ``fairness_study_v1/metric_configs/fairness.gin``
(num_train 10,000, num_test_points_per_class 100, batch_size 16, predictor: gradient boosting):

1. draw 10,000 points and fit, per target factor i, one classifier of i on their codes (scikit-learn's
   ``GradientBoostingClassifier()``; here dislab's ``metrics/_gbt.py``, the same model, as DCI);
2. for every sensitive factor j != i: draw 100 factor vectors once, and for every value c of j set
   factor j to c in all of them, render, encode and predict; column c of a (values of i) x (values
   of j) table counts the predictions;
3. from the table: q = the predictions' distribution over all columns, p_c = column c's; the pair's
   mean unfairness is sum_c n_c TV(p_c, q) / sum_c n_c (n_c = 100 for every c) and its max
   unfairness max_c TV(p_c, q);
4. each of the two (target x sensitive) matrices, diagonal excluded, is summarised along targets
   ("pred") and sensitive factors ("sens"): the mean or the max over one, then the mean or the max
   of those over the other.

The paper's score is disentanglement_lib's ``mean_fairness:mean_pred:mean_sens``, here
``fairness_mean_tv_mean_pred_mean_sens``. Keys: ``fairness_<t>_<outer>_<inner>`` with <t> ``mean_tv``
or ``max_tv`` (step 3: disentanglement_lib's ``mean_fairness`` / ``max_fairness``) and <outer>, <inner>
each ``mean_pred``, ``max_pred``, ``mean_sens`` or ``max_sens`` (outer: the aggregate of the inner
aggregates; disentanglement_lib's ``<t>:<outer>:<inner>``), 16 keys; ``fairness_matrices`` returns the
per-pair values it also reports. Differences: the classifiers are seeded from the metric's
generator (unseeded there); constant factors are neither targets nor sensitive factors; a target
seen with one value in training is predicted as that value; the tables' distributions are float64
(float32 there).
"""

from __future__ import annotations

import numpy as np

from dislab.metrics._sampling import check_codes, encode_factors, parallel_map, sample_codes, seed_from, varying_factors
from dislab.metrics.downstream_task import fit_predictor


def inter_group_fairness(counts) -> tuple[float, float]:
    """(mean, max) total variation between each column's distribution and the pooled one, for a table
    of prediction counts (rows: predicted values, columns: values of the sensitive factor); the
    mean weighted by the columns' totals."""
    counts = np.asarray(counts, dtype=np.float64)
    per_value = counts.sum(axis=0)
    pooled = counts.sum(axis=1) / counts.sum()
    tv = 0.5 * np.abs(counts / per_value - pooled[:, None]).sum(axis=0)
    return float(np.sum(tv * per_value) / per_value.sum()), float(tv.max())


def summarise(matrix: np.ndarray, prefix: str) -> dict[str, float]:
    """The eight mean/max combinations over targets (rows) and sensitive factors (columns) of a square
    matrix, its diagonal left out."""
    m = np.asarray(matrix, dtype=np.float64)
    off = ~np.eye(len(m), dtype=bool)
    rows = [m[i, off[i]] for i in range(len(m))]  # one target, every sensitive factor
    cols = [m[off[:, j], j] for j in range(len(m))]  # one sensitive factor, every target
    out = {}
    for outer, inner, groups in (("pred", "sens", rows), ("sens", "pred", cols)):
        for inner_fn in ("mean", "max"):
            values = np.array([getattr(np, inner_fn)(g) for g in groups])
            for outer_fn in ("mean", "max"):
                out[f"{prefix}_{outer_fn}_{outer}_{inner_fn}_{inner}"] = float(getattr(np, outer_fn)(values))
    return out


def fairness_matrices(codes, factors, intervened: dict, *, random_state: int = 0, n_jobs: int | None = 2,
                      n_estimators: int = 100, learning_rate: float = 0.1,
                      max_depth: int = 3) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(mean TV, max TV, factors) for the (target, sensitive) pairs of ``intervened``: a dict
    {(i, j): codes of shape (values of j, points, n_latents)}, entry [c] encoding the points with
    factor j set to value c, for every ordered pair of distinct factors (columns of ``factors``)
    among those it names. Targets are fitted on (codes, factors)."""
    codes, factors = check_codes(codes, factors)
    chosen = sorted({i for pair in intervened for i in pair})
    pairs = {(i, j) for i in chosen for j in chosen if i != j}
    if len(chosen) < 2 or set(intervened) != pairs:
        raise ValueError(f"intervened must hold every ordered pair of 2 or more factors, got {sorted(intervened)}")
    for (i, j), z in intervened.items():
        if not (0 <= i < factors.shape[1] and np.ndim(z) == 3 and np.shape(z)[2] == codes.shape[1]):
            raise ValueError(f"intervened[{i}, {j}] of shape {np.shape(z)} must be (values, points, "
                             f"{codes.shape[1]}) for a factor column below {factors.shape[1]}")

    def pair_scores(i):
        model = fit_predictor(codes, factors[:, i], "boosted_trees", random_state=random_state + int(i),
                              n_estimators=n_estimators, learning_rate=learning_rate, max_depth=max_depth)
        out = {}
        for j in chosen:
            if j != i:
                z = np.asarray(intervened[i, j], dtype=np.float64)
                pred = model.predict(z.reshape(-1, z.shape[2])).reshape(z.shape[:2]).astype(np.int64)
                counts = np.stack([np.bincount(p, minlength=pred.max() + 1) for p in pred], axis=1)
                out[j] = inter_group_fairness(counts)
        return out

    per_target = parallel_map(pair_scores, chosen, n_jobs)
    mean_tv, max_tv = np.zeros((len(chosen),) * 2), np.zeros((len(chosen),) * 2)
    for a, scores in enumerate(per_target):
        for b, j in enumerate(chosen):
            if j in scores:
                mean_tv[a, b], max_tv[a, b] = scores[j]
    return mean_tv, max_tv, chosen


def fairness_on_codes(codes, factors, intervened: dict, *, random_state: int = 0, n_jobs: int | None = 2,
                      n_estimators: int = 100, learning_rate: float = 0.1, max_depth: int = 3) -> dict[str, float]:
    """The 16 summary scores from training codes and intervened codes (see ``fairness_matrices``)."""
    mean_tv, max_tv, _ = fairness_matrices(codes, factors, intervened, random_state=random_state, n_jobs=n_jobs,
                                           n_estimators=n_estimators, learning_rate=learning_rate,
                                           max_depth=max_depth)
    return {**summarise(mean_tv, "fairness_mean_tv"), **summarise(max_tv, "fairness_max_tv")}


def sample_interventions(data, represent, rng: np.random.Generator, num_points: int, factors_used,
                         encode_batch: int | None = None) -> dict:
    """For every ordered pair (i, j) of ``factors_used``, in disentanglement_lib's order (targets outer):
    ``num_points`` factor vectors drawn once, factor j set to each of its values in turn, encoded:
    {(i, j): (factor_sizes[j], num_points, n_latents)}."""
    out = {}
    for i in factors_used:
        for j in factors_used:
            if i == j:
                continue
            base = data.sample_factors(num_points, rng)
            f = np.repeat(base[None], data.factor_sizes[j], axis=0)
            f[:, :, j] = np.arange(data.factor_sizes[j])[:, None]
            z = encode_factors(data, represent, f.reshape(-1, f.shape[2]), rng, encode_batch)
            out[int(i), int(j)] = z.reshape(data.factor_sizes[j], num_points, -1)
    return out


def fairness(data, represent, rng: np.random.Generator, *, num_train: int = 10_000,
             num_test_points_per_class: int = 100, batch_size: int = 16, n_jobs: int | None = 2,
             n_estimators: int = 100, learning_rate: float = 0.1, max_depth: int = 3,
             encode_batch: int | None = None) -> dict[str, float]:
    if num_test_points_per_class <= 0:
        raise ValueError(f"num_test_points_per_class={num_test_points_per_class} must be positive")
    used = varying_factors(data)
    if len(used) < 2:
        raise ValueError(f"fairness needs 2 or more factors that vary, {type(data).__name__} has {len(used)}")
    codes, factors = sample_codes(data, represent, num_train, rng, batch_size, encode_batch)
    intervened = sample_interventions(data, represent, rng, num_test_points_per_class, used, encode_batch)
    return fairness_on_codes(codes, factors, intervened, random_state=seed_from(rng), n_jobs=n_jobs,
                             n_estimators=n_estimators, learning_rate=learning_rate, max_depth=max_depth)
