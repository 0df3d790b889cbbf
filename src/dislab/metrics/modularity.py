"""Modularity and explicitness.

Ridgeway & Mozer 2018, "Learning Deep Disentangled Embeddings With the F-Statistic Loss", Sec. 3:
a latent d is modular when it carries information about one factor only: with m_dk the mutual
information between latent d and factor k and theta_d = max_k m_dk,
delta_d = sum_{k != argmax} m_dk^2 / (theta_d^2 (K - 1)) and modularity = mean_d (1 - delta_d).
Explicitness: per factor, a one-vs-rest logistic classifier of the factor's values from the whole
code; the mean ROC AUC over values, averaged over factors.

Checked against disentanglement_lib ``evaluation/metrics/modularity_explicitness.py``
(``modularity``: squared mutual information from the 20-bin histogram discretisation of the
training codes, a latent with no information scores 0; ``explicitness_per_factor``:
``LogisticRegression()`` with its defaults on codes standardised with the training mean and
deviation, ``roc_auc_score`` macro-averaged over the one-hot columns) and
``modularity_explicitness.gin`` (num_train 10,000, num_test 5,000, 20 bins, batch_size 16).
Fixes: a constant latent is centred rather than divided by zero (NaN in disentanglement_lib); the
one-hot columns are the classifier's classes, and a factor value absent from the test (or training)
labels is left out of the AUC average (disentanglement_lib fits its binariser on each label set
separately, which crashes or misaligns columns when a value is missing); with a single factor a
latent with information is perfectly modular (0/0 in disentanglement_lib). Constant factors are
dropped. Keys: ``modularity``, ``explicitness`` (test), ``explicitness_train``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression

from dislab.metrics._sampling import check_split, keep_varying, normalize, parallel_map, quiet_sklearn, sample_codes
from dislab.metrics.information import discrete_mutual_info, histogram_discretize


def modularity_from_mi(mutual_information: np.ndarray) -> float:
    """Mean over latents of 1 - delta_d, from the (n_latents, n_factors) mutual information."""
    sq = np.square(np.asarray(mutual_information, dtype=np.float64))
    top = sq.max(axis=1)
    k = sq.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        score = 1.0 - (sq.sum(axis=1) - top) / (top * (k - 1)) if k > 1 else np.ones(len(sq))
    score[top == 0.0] = 0.0
    return float(np.mean(score))


def _auc(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """Macro ROC AUC over the one-hot columns of ``y`` that hold both labels: each column's AUC as
    the Mann-Whitney statistic with average ranks for ties (what ``roc_auc_score`` integrates)."""
    onehot = y[:, None] == classes[None, :]
    npos = onehot.sum(axis=0)
    valid = (npos > 0) & (npos < len(y))
    if not valid.any():
        return float("nan")
    ranks = rankdata(proba[:, valid], axis=0)
    pos, neg = npos[valid], len(y) - npos[valid]
    u = (ranks * onehot[:, valid]).sum(axis=0) - pos * (pos + 1) / 2.0
    return float(np.mean(u / (pos * neg)))


def explicitness_per_factor(x, y, xt, yt, *, C: float = 1.0, max_iter: int = 100) -> tuple[float, float]:
    """(train AUC, test AUC) of a logistic classifier of one factor from standardised codes."""
    clf = LogisticRegression(C=C, max_iter=max_iter).fit(x, y)
    return _auc(y, clf.predict_proba(x), clf.classes_), _auc(yt, clf.predict_proba(xt), clf.classes_)


def modularity_on_codes(codes, factors, test_codes=None, test_factors=None, *, num_bins: int = 20,
                        train_fraction: float = 2 / 3, C: float = 1.0, max_iter: int = 100,
                        n_jobs: int | None = 2) -> dict[str, float]:
    """Modularity (training rows) and explicitness (train and test rows) on fixed arrays."""
    x, y, xt, yt = check_split(codes, factors, test_codes, test_factors, train_fraction)
    y, yt = keep_varying(y, yt, what="modularity")
    mod = modularity_from_mi(discrete_mutual_info(histogram_discretize(x, num_bins), y))
    xn, xtn = normalize(x, xt)
    with quiet_sklearn():
        aucs = parallel_map(lambda k: explicitness_per_factor(xn, y[:, k], xtn, yt[:, k], C=C, max_iter=max_iter),
                            np.argsort([-len(np.unique(y[:, k])) for k in range(y.shape[1])], kind="stable"), n_jobs)
    aucs = np.array(aucs)
    return {"modularity": mod, "explicitness": float(np.nanmean(aucs[:, 1])),
            "explicitness_train": float(np.nanmean(aucs[:, 0]))}


def modularity(data, represent, rng: np.random.Generator, *, num_train: int = 10_000, num_test: int = 5_000,
               batch_size: int = 16, num_bins: int = 20, C: float = 1.0, max_iter: int = 100,
               n_jobs: int | None = 2, encode_batch: int | None = None) -> dict[str, float]:
    x, y = sample_codes(data, represent, num_train, rng, batch_size, encode_batch)
    xt, yt = sample_codes(data, represent, num_test, rng, batch_size, encode_batch)
    return modularity_on_codes(x, y, xt, yt, num_bins=num_bins, C=C, max_iter=max_iter, n_jobs=n_jobs)
