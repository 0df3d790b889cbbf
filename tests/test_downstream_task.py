"""downstream_task against a restatement of disentanglement_lib's definition (evaluation/metrics/
downstream_task.py with utils.gradient_boosting_classifier / utils.logistic_regression_cv)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import KFold

from dislab.data.toy import Toy
from dislab.metrics._sampling import sample_codes, seed_from
from dislab.metrics.downstream_task import downstream_task, downstream_task_on_codes


def _labels(x, rng):
    """A 3-valued factor (the middle value between the others along latent 0: one-vs-rest and
    multinomial logistic regression differ there) and a 2-valued one, predictable up to noise."""
    return np.stack([np.digitize(x[:, 0] + 0.3 * rng.normal(size=len(x)), [-0.5, 0.5]),
                     x[:, 1] + 0.3 * x[:, 0] + 0.5 * rng.normal(size=len(x)) > 0], axis=1).astype(int)


def _arrays(n=300, nt=200, seed=0):
    rng = np.random.default_rng(seed)
    x, xt = rng.normal(size=(n, 2)), rng.normal(size=(nt, 2))
    return x, _labels(x, rng), xt, _labels(xt, rng)


def _dlib_scores(x, y, xt, yt, predictor_fn, names, fit=None):
    """disentanglement_lib's _compute_loss and key layout, restated: a fresh classifier per factor,
    fit on (points x latents), accuracy = mean(predict == factor) on the training and the test points."""
    train, test = [], []
    for k in range(y.shape[1]):
        model = predictor_fn().fit(x, y[:, k]) if fit is None else fit(y[:, k])
        train.append(np.mean(model.predict(x) == y[:, k]))
        test.append(np.mean(model.predict(xt) == yt[:, k]))
    p = f"downstream_task_{len(x)}"
    out = {f"{p}_mean_train_accuracy": np.mean(train), f"{p}_mean_test_accuracy": np.mean(test),
           f"{p}_min_train_accuracy": np.min(train), f"{p}_min_test_accuracy": np.min(test)}
    for k, name in enumerate(names):
        out[f"{p}_train_accuracy_{name}"] = train[k]
        out[f"{p}_test_accuracy_{name}"] = test[k]
    return out


def test_boosted_trees_equal_scikit_learns_gradient_boosting():
    """Shallow trees on two continuous latents: no two splits tie, so dislab's boosted trees and
    scikit-learn's GradientBoostingClassifier make the same predictions (tests/test_gbt.py)."""
    x, y, xt, yt = _arrays()
    got = downstream_task_on_codes(x, y, xt, yt, factor_names=["a", "b"], n_estimators=30, max_depth=2, n_jobs=1)
    want = _dlib_scores(x, y, xt, yt, lambda: GradientBoostingClassifier(n_estimators=30, max_depth=2), ["a", "b"])
    assert got == pytest.approx(want, abs=1e-12) and set(got) == set(want)
    # train and test differ, so scoring the wrong set (or training on the test points) shows
    assert got["downstream_task_300_mean_train_accuracy"] > got["downstream_task_300_mean_test_accuracy"] + 0.05
    assert downstream_task_on_codes(xt, yt, x, y, n_estimators=30, max_depth=2)[
        "downstream_task_200_mean_test_accuracy"] != got["downstream_task_300_mean_test_accuracy"]


def _logistic(x, t, C):
    """Binary L2 logistic regression as scikit-learn's lbfgs solves it, by damped Newton steps:
    minimise |w|^2 / 2 + C sum_i log(1 + exp(-s_i (w.x_i + b))), s_i = +-1, the intercept b unpenalised.
    Returns the score function x -> w.x + b."""
    xb = np.c_[x, np.ones(len(x))]
    s = 2.0 * t - 1
    reg = np.r_[np.ones(x.shape[1]), 0.0]

    def loss(w):
        return 0.5 * np.sum(reg * w * w) + C * np.sum(np.logaddexp(0, -s * (xb @ w)))

    w = np.zeros(xb.shape[1])
    for _ in range(200):
        m = s * (xb @ w)
        p = np.exp(-np.logaddexp(0, m))  # sigmoid(-m)
        grad = reg * w - C * xb.T @ (s * p)
        if np.abs(grad).max() < 1e-9 * max(1.0, C):
            break
        hess = np.diag(reg) + C * (xb * (p * (1 - p))[:, None]).T @ xb + 1e-12 * np.eye(len(w))
        step, f0 = np.linalg.solve(hess, grad), loss(w)
        a = 1.0
        while loss(w - a * step) > f0 - 1e-4 * a * grad @ step and a > 1e-10:
            a /= 2
        w = w - a * step
    return lambda z: np.c_[z, np.ones(len(z))] @ w


def _ovr_logistic_cv(x, y, Cs, folds):
    """LogisticRegressionCV(Cs, cv=KFold(folds)) as scikit-learn < 0.22 fitted it (one-vs-rest), by hand:
    per class, the C on np.logspace(-4, 4, Cs) with the best mean accuracy of the binary classifier over
    unshuffled folds (the first on ties), refit on all points; predict the class of largest score."""
    classes = np.unique(y)
    grid = np.logspace(-4, 4, Cs)
    scores = []
    for c in classes[1:] if len(classes) == 2 else classes:
        target = (y == c).astype(int)
        acc = np.zeros(len(grid))
        for tr, te in KFold(folds).split(x):
            for g, C in enumerate(grid):
                acc[g] += np.mean((_logistic(x[tr], target[tr], C)(x[te]) > 0) == target[te]) / folds
        scores.append(_logistic(x, target, grid[np.argmax(acc)]))

    class Model:
        def predict(self, z):
            s = np.stack([f(z) for f in scores], axis=1)
            return classes[(s[:, 0] > 0).astype(int)] if len(classes) == 2 else classes[np.argmax(s, axis=1)]

    return Model()


def test_logistic_regression_is_dlibs_cross_validated_one_vs_rest():
    """At the default grid (10 values of C, 5 folds), equal to the one-vs-rest restatement; the
    multinomial variant to scikit-learn's LogisticRegressionCV as disentanglement_lib calls it today."""
    x, y, xt, yt = _arrays(n=120, nt=100, seed=1)
    got = downstream_task_on_codes(x, y, xt, yt, predictor="logistic_regression", n_jobs=1)
    want = _dlib_scores(x, y, xt, yt, None, ["factor_0", "factor_1"], fit=lambda yk: _ovr_logistic_cv(x, yk, 10, 5))
    assert got == pytest.approx(want, abs=1e-12) and set(got) == set(want)
    multinomial = downstream_task_on_codes(x, y, xt, yt, predictor="logistic_regression", Cs=2, folds=2,
                                           multi_class="multinomial", n_jobs=1)
    ref = _dlib_scores(x, y, xt, yt, lambda: LogisticRegressionCV(Cs=2, cv=KFold(2), scoring="accuracy",
                                                                     l1_ratios=(0.0,), use_legacy_attributes=False),
                       ["factor_0", "factor_1"])
    assert multinomial == pytest.approx(ref, abs=1e-12)
    assert multinomial != downstream_task_on_codes(x, y, xt, yt, predictor="logistic_regression", Cs=2, folds=2,
                                                   n_jobs=1)  # the two fits differ on these data


def test_a_factor_seen_with_one_value_is_predicted_as_that_value():
    x, y, xt, yt = _arrays(n=40, nt=50)
    y[:, 1] = 1  # constant among the training points, not among the test points
    got = downstream_task_on_codes(x, y, xt, yt, n_estimators=5)
    assert got["downstream_task_40_train_accuracy_factor_1"] == 1.0
    assert got["downstream_task_40_test_accuracy_factor_1"] == pytest.approx(np.mean(yt[:, 1] == 1))
    const = downstream_task_on_codes(x, np.c_[y, np.zeros(40, int)], xt, np.c_[yt, np.zeros(50, int)], n_estimators=5)
    assert const == got  # a factor constant everywhere is dropped
    with pytest.raises(ValueError, match="predictor='svm'"):
        downstream_task_on_codes(x, y, xt, yt, predictor="svm")
    with pytest.raises(ValueError, match="factor_names"):
        downstream_task_on_codes(x, y, xt, yt, factor_names=["a"])


def _encode(x):
    """A noisy, partly entangled code of the toy square (deterministic per picture)."""
    img = x[:, 0]
    on = img > 0
    cols, rows = on.any(1), on.any(2)
    f = np.stack([cols.argmax(1), rows.argmax(1), cols.sum(1), img.max((1, 2)) * 10], 1).astype(float)
    noise = np.random.default_rng(int(x.sum() * 1000) % (2**32)).normal(0, 1.0, f.shape)
    return f @ np.array([[1, 0.5, 0, 0], [0, 1, 0.5, 0], [0, 0, 1, 0.5], [0.5, 0, 0, 1]]) + noise


def test_sampler_draws_a_train_then_a_test_sample_per_size():
    """disentanglement_lib's loop, replayed on the same generator: per size n, n training points then
    num_test test points, then (dislab) the classifiers' seed; keys per size."""
    data, kw = Toy(), dict(n_estimators=5, max_depth=2, n_jobs=1)
    got = downstream_task(data, _encode, np.random.default_rng(3), num_train=(20, 60), num_test=80, **kw)
    rng, want = np.random.default_rng(3), {}
    for n in (20, 60):
        x, y = sample_codes(data, _encode, n, rng, 16)
        xt, yt = sample_codes(data, _encode, 80, rng, 16)
        want.update(downstream_task_on_codes(x, y, xt, yt, factor_names=data.factor_names,
                                             random_state=seed_from(rng), **kw))
    assert got == want
    assert len(got) == 2 * (4 + 2 * 4) and "downstream_task_60_test_accuracy_intensity" in got
    assert got["downstream_task_60_mean_test_accuracy"] != got["downstream_task_20_mean_test_accuracy"]


def test_defaults_are_the_studys():
    """unsupervised_study_v1/metric_configs/downstream_task_*.gin and utils.py."""
    import inspect

    p = inspect.signature(downstream_task).parameters
    assert p["num_train"].default == (10, 100, 1000, 10000) and p["num_test"].default == 5000
    assert p["batch_size"].default == 16 and p["predictor"].default == "boosted_trees"
    assert (p["n_estimators"].default, p["learning_rate"].default, p["max_depth"].default) == (100, 0.1, 3)
    assert (p["Cs"].default, p["folds"].default, p["multi_class"].default) == (10, 5, "ovr")
    kernel = inspect.signature(downstream_task_on_codes).parameters  # the array kernel's knobs default as the metric's
    assert all(kernel[n].default == p[n].default for n in kernel if n in p and n != "random_state")
