"""dislab's boosted trees (metrics/_gbt.py) against scikit-learn's GradientBoostingClassifier."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from dislab.metrics._gbt import BoostedTrees


def _labels(x, n_classes, rng):
    return (np.floor(x[:, 0] * 2 + rng.normal(size=len(x))) % n_classes).astype(int)


@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_one_feature_equals_scikit_learn(n_classes, depth):
    """With one feature, shallow trees and many points, two cuts tie only if their proxies are equal
    to the last bit (none do on these data; at depth 3 small nodes make it happen, see below), so
    every tree, leaf value (the Newton step, the (K-1)/K factor for K > 2, one tree a stage for
    K = 2), starting score and threshold must be scikit-learn's: the scores agree to rounding."""
    rng = np.random.default_rng(n_classes)
    x, xt = rng.normal(size=(2000, 1)), rng.normal(size=(500, 1))
    y = _labels(x, n_classes, rng)
    ours = BoostedTrees(n_estimators=60, max_depth=depth).fit(x, y)
    ref = GradientBoostingClassifier(n_estimators=60, max_depth=depth).fit(x, y)
    np.testing.assert_allclose(ours.decision_function(xt), ref.decision_function(xt).reshape(len(xt), -1),
                               rtol=0, atol=1e-9)
    np.testing.assert_array_equal(ours.predict(xt), ref.predict(xt))
    np.testing.assert_array_equal(ours.train_predictions_, ref.predict(x))


def test_many_features_agree_with_scikit_learn_as_its_own_seeds_do():
    """At DCI's settings (10 features, depth 3) exactly equal splits occur (a point extreme in several
    features can be cut off by any of them) and each side breaks them at random: the importances and
    accuracies differ from scikit-learn's by about as much as two of its seeds differ."""
    rng = np.random.default_rng(0)
    x, xt = rng.normal(size=(3000, 10)), rng.normal(size=(1000, 10))
    y = (np.floor((x[:, 0] + 0.5 * x[:, 1] + 0.3 * rng.normal(size=3000)) * 2) % 5).astype(int)
    yt = (np.floor((xt[:, 0] + 0.5 * xt[:, 1]) * 2) % 5).astype(int)
    ours = BoostedTrees().fit(x, y)
    # the fit routes points by their place in each node's sorted segment; prediction by thresholds
    np.testing.assert_array_equal(ours.train_scores_, ours.decision_function(x))
    refs = [GradientBoostingClassifier(random_state=s).fit(x, y) for s in (0, 1)]
    seed_gap = np.abs(refs[0].feature_importances_ - refs[1].feature_importances_).max()
    gap = np.abs(ours.feature_importances_ - refs[0].feature_importances_).max()
    assert gap < max(3 * seed_gap, 1e-3), (gap, seed_gap)
    assert ours.feature_importances_.sum() == pytest.approx(1.0)
    assert abs(np.mean(ours.train_predictions_ == y) - np.mean(refs[0].predict(x) == y)) < 0.01
    assert abs(np.mean(ours.predict(xt) == yt) - np.mean(refs[0].predict(xt) == yt)) < 0.02


def test_ties_between_features_are_broken_at_random():
    """Two copies of one feature make every split a tie between them: each copy must get about half
    the importance (lowest-index-wins would give it all to the first), reproducibly per seed."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=(1500, 1))
    x = np.c_[z, z, rng.normal(size=(1500, 1))]
    y = _labels(z, 4, rng)
    imp = BoostedTrees(n_estimators=30, random_state=3).fit(x, y).feature_importances_
    assert 0.3 < imp[0] / (imp[0] + imp[1]) < 0.7, imp
    again = BoostedTrees(n_estimators=30, random_state=3).fit(x, y).feature_importances_
    other = BoostedTrees(n_estimators=30, random_state=4).fit(x, y).feature_importances_
    np.testing.assert_array_equal(imp, again)
    assert not np.array_equal(imp, other)
    assert imp[0] + imp[1] == pytest.approx(
        GradientBoostingClassifier(n_estimators=30).fit(x, y).feature_importances_[:2].sum(), abs=1e-3)


def test_values_within_1e_7_in_float32_are_one_value():
    """scikit-learn 1.9 compares neighbouring float32 values in float32 arithmetic: 1 and the next
    float32 up (1.19e-7 apart) cannot be cut apart, so nothing splits."""
    x = np.array([1, 1, np.nextafter(np.float32(1), np.float32(2))] * 2, dtype=np.float32)[:, None]
    y = np.array([0, 0, 1, 0, 0, 1])
    ours = BoostedTrees(n_estimators=3, max_depth=1).fit(x, y)
    ref = GradientBoostingClassifier(n_estimators=3, max_depth=1).fit(x, y)
    np.testing.assert_array_equal(ours.feature_importances_, ref.feature_importances_)
    np.testing.assert_allclose(ours.decision_function(x)[:, 0], ref.decision_function(x), atol=1e-12)


def test_nothing_to_split():
    """Constant features: no tree splits, importances are zero (as scikit-learn's) and the prediction
    is the most frequent class."""
    y = np.array([0, 1, 1, 2, 2, 2] * 5)
    ours = BoostedTrees(n_estimators=5).fit(np.ones((30, 3)), y)
    ref = GradientBoostingClassifier(n_estimators=5).fit(np.ones((30, 3)), y)
    np.testing.assert_array_equal(ours.feature_importances_, ref.feature_importances_)
    np.testing.assert_array_equal(ours.predict(np.zeros((2, 3))), [2, 2])


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="max_depth=0"):
        BoostedTrees(max_depth=0)
    with pytest.raises(ValueError, match="random_state=-1"):
        BoostedTrees(random_state=-1)
    with pytest.raises(ValueError, match="2 classes"):
        BoostedTrees().fit(np.zeros((4, 2)), [1, 1, 1, 1])
    with pytest.raises(ValueError, match=r"y \(3,\)"):
        BoostedTrees().fit(np.zeros((4, 2)), [0, 1, 1])
    model = BoostedTrees(n_estimators=2).fit(np.arange(8.0).reshape(4, 2), [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"must be \(n, 2\)"):
        model.predict(np.zeros((3, 5)))
