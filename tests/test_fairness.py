"""fairness against hand-computed cases and a restatement of disentanglement_lib's definition
(evaluation/metrics/fairness.py: compute_fairness, inter_group_fairness, compute_scores_dict)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from dislab.data.toy import Toy
from dislab.metrics._sampling import sample_codes, seed_from
from dislab.metrics.fairness import (
    fairness,
    fairness_matrices,
    fairness_on_codes,
    inter_group_fairness,
    sample_interventions,
    summarise,
)


def test_inter_group_fairness_by_hand():
    # disentanglement_lib's own case: pooled (1/3, 2/3); columns (0, 1) and (1/2, 1/2): TV 1/3 and 1/6,
    # weighted by the columns' totals (100, 200): 1/3 * 1/3 + 2/3 * 1/6 = 2/9
    assert inter_group_fairness([[0, 100], [100, 100]]) == pytest.approx((2 / 9, 1 / 3))
    # pooled (1/4, 3/4); TV 3/4 (10 points) and 1/4 (30 points): weighted mean 3/8, not the plain 1/2
    assert inter_group_fairness([[10, 0], [0, 30]]) == pytest.approx((3 / 8, 3 / 4))
    # predictions that do not depend on the sensitive value
    assert inter_group_fairness([[5, 5, 5], [15, 15, 15]]) == (0.0, 0.0)


def test_summaries_by_hand():
    # disentanglement_lib's compute_scores_dict test matrix
    got = summarise(np.array([[0.0, 2, 4], [4, 0, 8], [2, 10, 0]]), "t")
    assert got == {"t_mean_sens_mean_pred": 5.0, "t_mean_sens_max_pred": 22 / 3, "t_max_sens_mean_pred": 6.0,
                   "t_max_sens_max_pred": 10.0, "t_mean_pred_mean_sens": 5.0, "t_mean_pred_max_sens": 22 / 3,
                   "t_max_pred_mean_sens": 6.0, "t_max_pred_max_sens": 10.0}
    # an asymmetric one: rows (targets) [1, 2], [3, 4], [5, 6]; columns (sensitive) [3, 5], [1, 6], [2, 4]
    got = summarise(np.array([[0.0, 1, 2], [3, 0, 4], [5, 6, 0]]), "t")
    assert got == pytest.approx({"t_mean_pred_mean_sens": 3.5, "t_max_pred_mean_sens": 5.5, "t_mean_pred_max_sens": 4,
                                 "t_max_pred_max_sens": 6, "t_mean_sens_mean_pred": 3.5, "t_max_sens_mean_pred": 4,
                                 "t_mean_sens_max_pred": 5, "t_max_sens_max_pred": 6})


def _one_latent_case(values0: int):
    """Two factors; the code is factor 0 alone. In training, factor 1 follows factor 0 (1 where factor 0
    is its largest value, 9 times in 10), so the classifier of factor 1 predicts 1 exactly there."""
    f0 = np.repeat(np.arange(values0), 20)
    f1 = (f0 == values0 - 1).astype(int)
    f1[::10] = 1 - f1[::10]
    codes = f0[:, None].astype(float)
    m = 7  # intervened points per value
    base = np.random.default_rng(0).integers(0, [values0, 2], size=(m, 2))
    on1 = np.stack([np.full(m, c) for c in range(values0)])[:, :, None].astype(float)  # do(f0 = c): code c
    on0 = np.stack([base[:, :1].astype(float)] * 2)  # do(f1 = c): the code does not move
    return codes, np.c_[f0, f1], {(1, 0): on1, (0, 1): on0}


def test_a_classifier_that_ignores_the_sensitive_factor_is_fair_and_one_that_reads_it_is_not():
    # factor 1 predicted from a code that is factor 0: under do(f0 = c) it predicts [c == last value];
    # two values: columns (1, 0) and (0, 1), pooled (1/2, 1/2): TV 1/2 each
    codes, factors, intervened = _one_latent_case(2)
    mean_tv, max_tv, used = fairness_matrices(codes, factors, intervened, n_estimators=20)
    assert used == [0, 1]
    assert mean_tv == pytest.approx(np.array([[0, 0], [0.5, 0]])) and max_tv == pytest.approx(mean_tv)
    # three values: the prediction is 1 only under do(f0 = 2): pooled (2/3, 1/3); TV 1/3, 1/3, 2/3
    codes, factors, intervened = _one_latent_case(3)
    mean_tv, max_tv, _ = fairness_matrices(codes, factors, intervened, n_estimators=20)
    assert mean_tv == pytest.approx(np.array([[0, 0], [4 / 9, 0]]))
    assert max_tv == pytest.approx(np.array([[0, 0], [2 / 3, 0]]))
    got = fairness_on_codes(codes, factors, intervened, n_estimators=20)
    assert got["fairness_mean_tv_mean_pred_mean_sens"] == pytest.approx(2 / 9)  # (0 + 4/9) / 2
    assert got["fairness_max_tv_max_pred_max_sens"] == pytest.approx(2 / 3)
    assert len(got) == 16


def _dlib_fairness(codes, factors, intervened, factor_sizes, **gbt):
    """compute_fairness from step 2 on, restated with scikit-learn's GradientBoostingClassifier and
    float32 tables: per target i a classifier, per sensitive j != i the (values of i) x (values of j)
    counts of its predictions, then inter_group_fairness and compute_scores_dict (its key names)."""
    k = factors.shape[1]
    mean_f, max_f = np.zeros((k, k)), np.zeros((k, k))
    for i in range(k):
        model = GradientBoostingClassifier(**gbt).fit(codes, factors[:, i])
        for j in range(k):
            if i == j:
                continue
            counts = np.zeros((factor_sizes[i], factor_sizes[j]), dtype=np.int64)
            for c in range(factor_sizes[j]):
                counts[:, c] = np.bincount(model.predict(intervened[i, j][c]), minlength=factor_sizes[i])
            overall = np.sum(counts, axis=1, dtype=np.float32)
            overall /= overall.sum()
            norm = np.array(counts, dtype=np.float32) / np.sum(counts, axis=0)[None]
            tv = np.sum(np.abs(norm - overall[:, None]), 0) / 2.0
            mean_f[i, j] = np.sum(tv * np.sum(counts, axis=0)) / np.sum(counts)
            max_f[i, j] = np.amax(tv)
    out = {}
    for name, m in (("mean_fairness", mean_f), ("max_fairness", max_f)):
        rows = [[m[i, j] for j in range(k) if j != i] for i in range(k)]
        cols = [[m[i, j] for i in range(k) if i != j] for j in range(k)]
        rm, rx = [np.mean(r) for r in rows], [np.amax(r) for r in rows]
        cm, cx = [np.mean(c) for c in cols], [np.amax(c) for c in cols]
        out.update({f"{name}:mean_sens:mean_pred": np.mean(cm), f"{name}:mean_sens:max_pred": np.mean(cx),
                    f"{name}:max_sens:mean_pred": np.amax(cm), f"{name}:max_sens:max_pred": np.amax(cx),
                    f"{name}:mean_pred:mean_sens": np.mean(rm), f"{name}:mean_pred:max_sens": np.mean(rx),
                    f"{name}:max_pred:mean_sens": np.amax(rm), f"{name}:max_pred:max_sens": np.amax(rx)})
    return out


def _entangled_code(f, rng):
    """Two continuous latents, each mixing two of the three factors, plus noise."""
    return np.c_[f[:, 0] + 0.6 * f[:, 1], f[:, 2] - 0.4 * f[:, 1]] + rng.normal(0, 0.4, (len(f), 2))


def test_equals_disentanglement_libs_definition_on_fixed_arrays():
    """Shallow boosted trees on two continuous latents (no tied splits: dislab's trees make
    scikit-learn's predictions, tests/test_gbt.py)."""
    rng = np.random.default_rng(0)
    sizes = (3, 4, 2)
    factors = rng.integers(0, sizes, size=(400, 3))
    codes = _entangled_code(factors, rng)
    intervened = {}
    for i in range(3):
        for j in range(3):
            if i != j:
                base = rng.integers(0, sizes, size=(30, 3))
                f = np.repeat(base[None], sizes[j], axis=0)
                f[:, :, j] = np.arange(sizes[j])[:, None]
                intervened[i, j] = _entangled_code(f.reshape(-1, 3), rng).reshape(sizes[j], 30, 2)
    got = fairness_on_codes(codes, factors, intervened, n_estimators=20, max_depth=2, n_jobs=1)
    want = _dlib_fairness(codes, factors, intervened, sizes, n_estimators=20, max_depth=2)
    assert len(got) == len(want) == 16
    for key, value in want.items():
        t, outer, inner = key.split(":")
        assert got[f"fairness_{t.split('_')[0]}_tv_{outer}_{inner}"] == pytest.approx(value, abs=1e-6), key
    assert got["fairness_mean_tv_mean_pred_mean_sens"] > 0.05  # the entangled code is unfair


def test_sampler_intervenes_on_the_sensitive_factor_in_disentanglement_libs_order():
    data = Toy()
    seen = []

    def represent(x):  # the factors themselves, read off the picture
        img = x[:, 0]
        on = img > 0
        cols, rows = on.any(1), on.any(2)
        f = np.stack([cols.argmax(1), rows.argmax(1), cols.sum(1), np.round(img.max((1, 2)) * 10)], 1).astype(float)
        seen.append(f)
        return f

    rng = np.random.default_rng(0)
    z = sample_interventions(data, represent, rng, 5, [0, 1, 2, 3])
    assert list(z) == [(i, j) for i in range(4) for j in range(4) if i != j]  # targets outer, as dlib's loops
    for (_, j), codes in z.items():
        assert codes.shape == (data.factor_sizes[j], 5, 4)
        # the sensitive factor's latent takes a different value for each value c; the others do not move
        assert all(len(np.unique(codes[:, p, j])) == data.factor_sizes[j] for p in range(5))
        assert np.array_equal(np.delete(codes, j, axis=2), np.repeat(np.delete(codes, j, axis=2)[:1],
                                                                     data.factor_sizes[j], axis=0))
    # the whole metric replays: training sample, interventions, then the classifiers' seed
    kw = dict(n_estimators=5, n_jobs=1)
    got = fairness(data, represent, np.random.default_rng(1), num_train=300, num_test_points_per_class=5, **kw)
    rng = np.random.default_rng(1)
    x, y = sample_codes(data, represent, 300, rng, 16)
    inter = sample_interventions(data, represent, rng, 5, [0, 1, 2, 3])
    assert got == fairness_on_codes(x, y, inter, random_state=seed_from(rng), **kw)
    assert got["fairness_max_tv_max_pred_max_sens"] == 0.0  # a disentangled code reads each factor alone


def test_refuses_incomplete_pairs():
    codes, factors, intervened = _one_latent_case(2)
    with pytest.raises(ValueError, match="every ordered pair"):
        fairness_on_codes(codes, factors, {(0, 1): intervened[0, 1]})
    with pytest.raises(ValueError, match="num_test_points_per_class=0"):
        fairness(Toy(), lambda x: x[:, 0, 0, :4], np.random.default_rng(0), num_test_points_per_class=0)


def test_defaults_are_the_fairness_studys():
    """fairness_study_v1/metric_configs/fairness.gin and utils.gradient_boosting_classifier."""
    import inspect

    p = inspect.signature(fairness).parameters
    assert p["num_train"].default == 10_000 and p["num_test_points_per_class"].default == 100
    assert p["batch_size"].default == 16
    assert (p["n_estimators"].default, p["learning_rate"].default, p["max_depth"].default) == (100, 0.1, 3)
    kernel = inspect.signature(fairness_on_codes).parameters  # the array kernel's knobs default as the metric's
    assert all(kernel[n].default == p[n].default for n in kernel if n in p and n != "random_state")
