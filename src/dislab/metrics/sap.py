"""SAP: Separated Attribute Predictability.

Kumar et al. 2018, "Variational Inference of Disentangled Latent Concepts from Unlabeled
Observations" (DIP-VAE), Sec. 3: a (n_latents x n_factors) score matrix S, where S_dk is how well
latent d alone predicts factor k — the R^2 of a linear regression for a continuous factor, the
balanced-accuracy classifier's test accuracy for a discrete one; the SAP score is the mean over
factors of the gap between the two largest entries of the factor's column.

Checked against disentanglement_lib ``evaluation/metrics/sap_score.py`` (``compute_score_matrix``:
``sklearn.svm.LinearSVC(C=0.01, class_weight="balanced")`` fit on one latent and scored by plain
accuracy on the test points; R^2 = cov^2 / (var var) with ddof=1 and 0 for a latent of variance
<= 1e-12; ``compute_avg_diff_top_two``) and ``sap_score.gin`` (num_train 10,000, num_test 5,000,
continuous_factors False, batch_size 16). Differences: constant factors are dropped (a one-class
factor crashes LinearSVC); the classifiers are seeded from the metric's generator and fit on
``n_jobs`` threads; with a single latent the gap is its own score (disentanglement_lib indexes past
the end of the sorted column). Key: ``sap``.
"""

from __future__ import annotations

import numpy as np
from sklearn.svm import LinearSVC

from dislab.metrics._sampling import check_split, keep_varying, parallel_map, quiet_sklearn, sample_codes, seed_from


def score_matrix(codes, factors, test_codes, test_factors, *, continuous_factors: bool = False, C: float = 0.01,
                 random_state: int = 0, n_jobs: int | None = 2) -> np.ndarray:
    """S (n_latents, n_factors) as described above."""
    d, k = codes.shape[1], factors.shape[1]
    if continuous_factors:
        out = np.zeros((d, k))
        for i in range(d):
            for j in range(k):
                c = np.cov(codes[:, i], factors[:, j], ddof=1)
                out[i, j] = c[0, 1] ** 2 / (c[0, 0] * c[1, 1]) if c[0, 0] > 1e-12 else 0.0
        return out

    def fit(ij):
        i, j = ij
        clf = LinearSVC(C=C, class_weight="balanced", random_state=random_state + ij[0] * k + j)
        clf.fit(codes[:, i:i + 1], factors[:, j])
        return np.mean(clf.predict(test_codes[:, i:i + 1]) == test_factors[:, j])

    with quiet_sklearn():
        acc = parallel_map(fit, [(i, j) for i in range(d) for j in range(k)], n_jobs)
    return np.array(acc).reshape(d, k)


def top_two_gap(matrix: np.ndarray) -> float:
    """Mean over columns of (largest - second largest) entry; a single row has no second (gap = largest)."""
    m = np.sort(np.asarray(matrix, dtype=np.float64), axis=0)
    second = m[-2] if len(m) > 1 else np.zeros(m.shape[1])
    return float(np.mean(m[-1] - second))


def sap_on_codes(codes, factors, test_codes=None, test_factors=None, *, continuous_factors: bool = False,
                 C: float = 0.01, train_fraction: float = 2 / 3, random_state: int = 0,
                 n_jobs: int | None = 2) -> dict[str, float]:
    """SAP on fixed arrays (test arrays as in ``dci_on_codes``; the continuous version uses only the
    training rows)."""
    x, y, xt, yt = check_split(codes, factors, test_codes, test_factors, train_fraction)
    y, yt = keep_varying(y, yt, what="SAP")
    return {"sap": top_two_gap(score_matrix(x, y, xt, yt, continuous_factors=continuous_factors, C=C,
                                            random_state=random_state, n_jobs=n_jobs))}


def sap(data, represent, rng: np.random.Generator, *, num_train: int = 10_000, num_test: int = 5_000,
        batch_size: int = 16, continuous_factors: bool = False, C: float = 0.01, n_jobs: int | None = 2,
        encode_batch: int | None = None) -> dict[str, float]:
    x, y = sample_codes(data, represent, num_train, rng, batch_size, encode_batch)
    xt, yt = sample_codes(data, represent, num_test, rng, batch_size, encode_batch)
    return sap_on_codes(x, y, xt, yt, continuous_factors=continuous_factors, C=C, random_state=seed_from(rng),
                        n_jobs=n_jobs)
