"""DCI: Disentanglement, Completeness and Informativeness.

Eastwood & Williams 2018, "A Framework for the Quantitative Evaluation of Disentangled
Representations", Sec. 2: regress each factor k on the code with a predictor that yields importances
R_dk >= 0. Disentanglement of latent d is D_d = 1 - H_K(P_d.) with P_dk = R_dk / sum_k R_dk and H_K
the entropy in base K (eq. 1-2); the total is sum_d rho_d D_d with rho_d = sum_k R_dk / sum R (eq. 3).
Completeness of factor k is C_k = 1 - H_D(P_.k) with P_dk = R_dk / sum_d R_dk, averaged with weights
sum_d R_dk / sum R (as disentanglement_lib does; the paper averages uniformly). Informativeness is the
predictor's accuracy on held-out points.

Checked against disentanglement_lib ``evaluation/metrics/dci.py`` (``compute_importance_gbt``,
``disentanglement``, ``completeness``: one ``sklearn.ensemble.GradientBoostingClassifier`` per factor
with its defaults, importances ``|feature_importances_|``, entropies of ``R + 1e-11``) and ``dci.gin``
(num_train 10,000, num_test 5,000, batch_size 16). The boosted trees are that classifier at
disentanglement_lib's era defaults (100 stages of depth-3 trees, learning rate 0.1, all points and
features), fitted by dislab's own implementation (``metrics/_gbt.py``: the same model and
conventions, 12-17x faster on one thread; equal to scikit-learn's up to how ties between equally
good splits are broken, which is random in both). Fixes: each classifier is seeded from the metric's generator
(disentanglement_lib left them unseeded, so its DCI varied from run to run); with a single factor
(or a single latent) the base-1 entropy is 0/0 in disentanglement_lib and NaN follows — here a lone
factor (latent) is perfectly disentangled (complete) wherever it has importance. Constant factors
are dropped. The per-factor fits run on ``n_jobs`` threads (results identical to a serial run).

Keys: ``dci_disentanglement``, ``dci_completeness``, ``dci_informativeness`` (test accuracy, mean
over factors) and ``dci_informativeness_train``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import entropy

from dislab.metrics._gbt import BoostedTrees
from dislab.metrics._sampling import check_split, keep_varying, parallel_map, sample_codes, seed_from


def _entropy_score(p: np.ndarray) -> np.ndarray:
    """1 - H_base(rows of p + 1e-11) with base = the number of columns; with one column, 1 for a row
    with importance and 0 for one without."""
    if p.shape[1] == 1:
        return (p[:, 0] > 0).astype(np.float64)
    return 1.0 - entropy(p.T + 1e-11, base=p.shape[1])


def disentanglement(importance: np.ndarray) -> float:
    """Eq. 3 from an importance matrix R of shape (n_latents, n_factors)."""
    r = np.asarray(importance, dtype=np.float64)
    per_code = _entropy_score(r)
    if r.sum() == 0.0:
        r = np.ones_like(r)
    return float(np.sum(per_code * r.sum(axis=1) / r.sum()))


def completeness(importance: np.ndarray) -> float:
    """The completeness counterpart of eq. 3, weighted by each factor's share of the importance."""
    return disentanglement(np.asarray(importance).T)


def importance_gbt(codes, factors, test_codes, test_factors, *, random_state: int = 0, n_jobs: int | None = 2,
                   n_estimators: int = 100, learning_rate: float = 0.1, max_depth: int = 3):
    """Per factor, a gradient-boosted tree classifier on the codes (``_gbt.BoostedTrees``, scikit-learn's
    ``GradientBoostingClassifier`` faster). Returns (R (D, K), train accuracy (K,), test accuracy (K,))."""

    def fit(k):
        model = BoostedTrees(n_estimators=n_estimators, learning_rate=learning_rate, max_depth=max_depth,
                             random_state=random_state + k).fit(codes, factors[:, k])
        return (np.abs(model.feature_importances_), np.mean(model.train_predictions_ == factors[:, k]),
                np.mean(model.predict(test_codes) == test_factors[:, k]))

    # the largest classification problems first, so the threads finish together
    order = np.argsort([-len(np.unique(factors[:, k])) for k in range(factors.shape[1])], kind="stable")
    done = dict(zip(order, parallel_map(fit, order, n_jobs), strict=True))
    res = [done[k] for k in range(factors.shape[1])]
    return np.stack([r[0] for r in res], axis=1), np.array([r[1] for r in res]), np.array([r[2] for r in res])


def dci_on_codes(codes, factors, test_codes=None, test_factors=None, *, train_fraction: float = 2 / 3,
                 random_state: int = 0, n_jobs: int | None = 2, n_estimators: int = 100, learning_rate: float = 0.1,
                 max_depth: int = 3) -> dict[str, float]:
    """DCI on fixed arrays: train on (codes, factors), test on (test_codes, test_factors) or, without
    them, on the last ``1 - train_fraction`` of the rows."""
    x, y, xt, yt = check_split(codes, factors, test_codes, test_factors, train_fraction)
    y, yt = keep_varying(y, yt, what="DCI")
    r, train_acc, test_acc = importance_gbt(x, y, xt, yt, random_state=random_state, n_jobs=n_jobs,
                                            n_estimators=n_estimators, learning_rate=learning_rate, max_depth=max_depth)
    return {"dci_disentanglement": disentanglement(r), "dci_completeness": completeness(r),
            "dci_informativeness": float(np.mean(test_acc)), "dci_informativeness_train": float(np.mean(train_acc))}


def dci(data, represent, rng: np.random.Generator, *, num_train: int = 10_000, num_test: int = 5_000,
        batch_size: int = 16, n_jobs: int | None = 2, n_estimators: int = 100, learning_rate: float = 0.1,
        max_depth: int = 3, encode_batch: int | None = None) -> dict[str, float]:
    x, y = sample_codes(data, represent, num_train, rng, batch_size, encode_batch)
    xt, yt = sample_codes(data, represent, num_test, rng, batch_size, encode_batch)
    return dci_on_codes(x, y, xt, yt, random_state=seed_from(rng), n_jobs=n_jobs, n_estimators=n_estimators,
                        learning_rate=learning_rate, max_depth=max_depth)
