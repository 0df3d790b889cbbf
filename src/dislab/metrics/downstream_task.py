"""Downstream task: how well a simple classifier predicts each factor from the code, by training-set size.

Locatello et al. 2019, "Challenging Common Assumptions in the Unsupervised Learning of Disentangled
Representations", the downstream-task experiment ("Are these disentangled representations useful for
downstream tasks in terms of the sample complexity of learning?"): for each training-set size
n in (10, 100, 1,000, 10,000), draw a fresh sample of n points and a test sample of 5,000, and per
factor fit a classifier of the factor's value on the code (one classifier per factor, all latents
as inputs); report the accuracy on the training and on the test points, its mean and its minimum
over the factors, and each factor's.

Checked against disentanglement_lib ``evaluation/metrics/downstream_task.py``
(``compute_downstream_task``: per size, ``generate_batch_factor_code`` for the n training points,
then for the 5,000 test points, from the same random state; ``_compute_loss``: a fresh
``predictor_fn()`` per factor, fit on the codes (points x latents, unscaled), accuracy =
``mean(predict == factor)``) and ``unsupervised_study_v1/metric_configs/downstream_task_{boosted_trees,
logistic_regression}.gin`` (num_train [10, 100, 1000, 10000], num_test 5,000, batch_size 16). The
predictor is a knob: ``boosted_trees`` (``utils.gradient_boosting_classifier``: scikit-learn's
``GradientBoostingClassifier()`` at its defaults, fitted here by dislab's ``metrics/_gbt.py``, the
same model, as DCI) or ``logistic_regression`` (``utils.logistic_regression_cv``:
``LogisticRegressionCV(Cs=10, cv=KFold(5))``: an L2 grid of 10 values of C from 1e-4 to 1e4, five
unshuffled folds scored by accuracy, refit on all points with the best C). scikit-learn < 0.22, the
versions of 2018-19 when the study ran, fitted that one-vs-rest (one binary classifier and one choice
of C per class), the default here; ``multi_class="multinomial"`` gives what disentanglement_lib's
code fits on scikit-learn >= 0.22.

Differences: the classifiers are seeded from the metric's generator (disentanglement_lib left them
unseeded), drawn after each size's two samples; a factor constant in the whole sample is dropped
(dSprites' colour; disentanglement_lib's data sets drop it themselves); a factor that takes a single
value among the (few) training points, on which disentanglement_lib's classifiers raise, is predicted
as that value. Keys, for each size n: ``downstream_task_<n>_{mean,min}_{train,test}_accuracy`` and
per factor ``downstream_task_<n>_{train,test}_accuracy_<factor name>`` (disentanglement_lib's
``<n>:mean_test_accuracy``, ``<n>:test_accuracy_factor_<i>``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dislab.metrics._gbt import BoostedTrees
from dislab.metrics._sampling import check_codes, parallel_map, quiet_sklearn, sample_codes, seed_from, varying_columns

PREDICTORS = ("boosted_trees", "logistic_regression")


class _Constant:
    """The prediction of a factor seen with one value only."""

    def __init__(self, value):
        self.value = value

    def predict(self, x):
        return np.full(len(x), self.value)


def fit_predictor(x, y, predictor: str = "boosted_trees", *, random_state: int = 0, n_estimators: int = 100,
                  learning_rate: float = 0.1, max_depth: int = 3, Cs: int = 10, folds: int = 5,
                  multi_class: str = "ovr"):
    """A classifier of ``y`` from ``x`` (n, D) with ``predict``: disentanglement_lib's boosted trees or
    its cross-validated logistic regression (see the module docstring; ``random_state`` seeds the trees,
    the logistic fits are deterministic). Call it under ``quiet_sklearn()``."""
    values = np.unique(y)
    if len(values) == 1:
        return _Constant(values[0])
    if predictor == "boosted_trees":
        return BoostedTrees(n_estimators=n_estimators, learning_rate=learning_rate, max_depth=max_depth,
                            random_state=random_state).fit(x, y)
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import KFold

    model = LogisticRegressionCV(Cs=Cs, cv=KFold(folds), scoring="accuracy", l1_ratios=(0.0,),
                                 use_legacy_attributes=False)
    if multi_class == "ovr":
        from sklearn.multiclass import OneVsRestClassifier

        model = OneVsRestClassifier(model)
    return model.fit(x, y)


def check_predictor(predictor: str, multi_class: str = "ovr") -> None:
    if predictor not in PREDICTORS:
        raise ValueError(f"predictor={predictor!r} is not one of {PREDICTORS}")
    if multi_class not in ("ovr", "multinomial"):
        raise ValueError(f"multi_class={multi_class!r} is not 'ovr' or 'multinomial'")


def downstream_task_on_codes(codes, factors, test_codes, test_factors, *, predictor: str = "boosted_trees",
                             factor_names: Sequence[str] | None = None, random_state: int = 0,
                             n_jobs: int | None = 2, n_estimators: int = 100, learning_rate: float = 0.1,
                             max_depth: int = 3, Cs: int = 10, folds: int = 5,
                             multi_class: str = "ovr") -> dict[str, float]:
    """One training size: per factor, a classifier trained on (codes, factors) and scored on both sets.
    The keys carry n = len(codes); factor k's keys carry ``factor_names[k]`` (default ``factor_<k>``)."""
    check_predictor(predictor, multi_class)
    x, y = check_codes(codes, factors)
    xt, yt = check_codes(test_codes, test_factors)
    if xt.shape[1] != x.shape[1] or yt.shape[1] != y.shape[1]:
        raise ValueError(f"test arrays {xt.shape}, {yt.shape} do not match {x.shape}, {y.shape}")
    names = [f"factor_{k}" for k in range(y.shape[1])] if factor_names is None else list(factor_names)
    if len(names) != y.shape[1]:
        raise ValueError(f"{len(names)} factor_names for {y.shape[1]} factors")
    keep = np.flatnonzero(varying_columns(np.concatenate([y, yt])))
    if not len(keep):
        raise ValueError("downstream_task needs at least one factor that varies in the sample")

    def fit(k):
        model = fit_predictor(x, y[:, k], predictor, random_state=random_state + int(k), n_estimators=n_estimators,
                              learning_rate=learning_rate, max_depth=max_depth, Cs=Cs, folds=folds,
                              multi_class=multi_class)
        train = getattr(model, "train_predictions_", None)
        train = model.predict(x) if train is None else train
        return float(np.mean(train == y[:, k])), float(np.mean(model.predict(xt) == yt[:, k]))

    # the largest classification problems first, so the threads finish together
    order = sorted(keep, key=lambda k: -len(np.unique(y[:, k])))
    with quiet_sklearn():
        acc = dict(zip(order, parallel_map(fit, order, n_jobs), strict=True))
    train, test = np.array([acc[k][0] for k in keep]), np.array([acc[k][1] for k in keep])
    p = f"downstream_task_{len(x)}"
    out = {f"{p}_mean_train_accuracy": float(train.mean()), f"{p}_mean_test_accuracy": float(test.mean()),
           f"{p}_min_train_accuracy": float(train.min()), f"{p}_min_test_accuracy": float(test.min())}
    for k in keep:
        out[f"{p}_train_accuracy_{names[k]}"] = acc[k][0]
        out[f"{p}_test_accuracy_{names[k]}"] = acc[k][1]
    return out


def downstream_task(data, represent, rng: np.random.Generator, *, num_train: Sequence[int] = (10, 100, 1_000, 10_000),
                    num_test: int = 5_000, batch_size: int = 16, predictor: str = "boosted_trees",
                    n_jobs: int | None = 2, n_estimators: int = 100, learning_rate: float = 0.1, max_depth: int = 3,
                    Cs: int = 10, folds: int = 5, multi_class: str = "ovr",
                    encode_batch: int | None = None) -> dict[str, float]:
    check_predictor(predictor, multi_class)
    sizes = [int(n) for n in num_train]
    if not sizes or min(sizes) <= 0 or len(set(sizes)) != len(sizes):
        raise ValueError(f"num_train={list(num_train)} must be distinct positive sizes")
    out: dict[str, float] = {}
    for n in sizes:
        x, y = sample_codes(data, represent, n, rng, batch_size, encode_batch)
        xt, yt = sample_codes(data, represent, num_test, rng, batch_size, encode_batch)
        out.update(downstream_task_on_codes(
            x, y, xt, yt, predictor=predictor, factor_names=data.factor_names, random_state=seed_from(rng),
            n_jobs=n_jobs, n_estimators=n_estimators, learning_rate=learning_rate, max_depth=max_depth, Cs=Cs,
            folds=folds, multi_class=multi_class))
    return out
