"""BetaVAE score.

Higgins et al. 2017, "beta-VAE: Learning Basic Visual Concepts with a Constrained Variational
Framework", Sec. 3 ("Disentanglement metric") and Appendix A.4: pick a factor y, draw ``batch_size``
pairs of points that share y's value and differ elsewhere, take the mean absolute difference of
their codes, z_diff = 1/L sum_l |z_1^l - z_2^l|, and train a linear classifier to predict y from
z_diff. The score is its accuracy on held-out points.

Checked against disentanglement_lib ``evaluation/metrics/beta_vae.py`` (``compute_beta_vae_sklearn``:
``sklearn.linear_model.LogisticRegression()`` with its defaults, no feature scaling) and its
unsupervised-study settings (``beta_vae_sklearn.gin``: batch_size 64, num_train 10,000, num_eval
5,000). Differences, none of which changes what the score means: y is drawn only among the factors
that vary on the grid (disentanglement_lib's data sets drop constant factors themselves); the pairs
are drawn at once (vectorised) and rendered in blocks; the model sees ``encode_batch`` images a call.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from dislab.metrics._sampling import encode_factors, quiet_sklearn, varying_factors


def sample_pairs(data, rng: np.random.Generator, num_points: int, batch_size: int):
    """Factor batches for ``num_points`` feature vectors: (f1, f2, fixed) with f1, f2 of shape
    (num_points, batch_size, K) equal in column ``fixed[i]`` of point i."""
    k, varying = data.num_factors, varying_factors(data)
    fixed = varying[rng.integers(len(varying), size=num_points)]
    f1 = data.sample_factors(num_points * batch_size, rng).reshape(num_points, batch_size, k)
    f2 = data.sample_factors(num_points * batch_size, rng).reshape(num_points, batch_size, k)
    rows = np.arange(num_points)
    f2[rows, :, fixed] = f1[rows, :, fixed]
    return f1, f2, fixed


def pair_features(data, represent, rng: np.random.Generator, f1: np.ndarray, f2: np.ndarray,
                  encode_batch: int | None = None) -> np.ndarray:
    """z_diff for every point: render and encode both halves of a block of pairs together, the model
    seeing ``encode_batch`` images a call; shape (num_points, D)."""
    n, b, k = f1.shape
    per_block = max(1, 4096 // (2 * b))  # points per block: the z's of a block are held at once
    out = []
    for s in range(0, n, per_block):
        f = np.concatenate([f1[s:s + per_block].reshape(-1, k), f2[s:s + per_block].reshape(-1, k)])
        z = encode_factors(data, represent, f, rng, encode_batch)
        z = z.reshape(2, -1, b, z.shape[-1])
        out.append(np.abs(z[0] - z[1]).mean(axis=1))
    return np.concatenate(out)


def beta_vae_on_features(train_x, train_y, eval_x, eval_y, *, C: float = 1.0,
                         max_iter: int = 100) -> dict[str, float]:
    """Fit the linear classifier on (z_diff, factor) pairs and score it."""
    train_x, eval_x = np.asarray(train_x, dtype=np.float64), np.asarray(eval_x, dtype=np.float64)
    if not (np.isfinite(train_x).all() and np.isfinite(eval_x).all()):
        raise ValueError("codes contain NaN or infinite values")
    if len(np.unique(train_y)) < 2:  # a single class: the classifier always predicts it
        only = np.asarray(train_y)[0]
        return {"beta_vae_score": float(np.mean(np.asarray(eval_y) == only)), "beta_vae_train_accuracy": 1.0}
    with quiet_sklearn():
        model = LogisticRegression(C=C, max_iter=max_iter).fit(train_x, train_y)
    return {"beta_vae_score": float(model.score(eval_x, eval_y)),
            "beta_vae_train_accuracy": float(model.score(train_x, train_y))}


def beta_vae_on_codes(codes_1, codes_2, fixed, *, num_train: int, C: float = 1.0,
                      max_iter: int = 100) -> dict[str, float]:
    """The score from pair codes of any model: ``codes_1``, ``codes_2`` of shape (n_points, batch_size, D)
    (pair l of point i shares factor ``fixed[i]``); the first ``num_train`` points train the classifier,
    the rest evaluate it."""
    z1, z2 = np.asarray(codes_1, dtype=np.float64), np.asarray(codes_2, dtype=np.float64)
    fixed = np.asarray(fixed)
    if z1.ndim != 3 or z1.shape != z2.shape or fixed.shape != (len(z1),):
        raise ValueError(f"codes {z1.shape}, {z2.shape} must be (n_points, batch_size, D) and fixed "
                         f"{fixed.shape} (n_points,)")
    if not 0 < num_train < len(z1):
        raise ValueError(f"num_train={num_train} must leave training and evaluation points out of {len(z1)}")
    x = np.abs(z1 - z2).mean(axis=1)
    return beta_vae_on_features(x[:num_train], fixed[:num_train], x[num_train:], fixed[num_train:], C=C,
                                max_iter=max_iter)


def beta_vae_score(data, represent, rng: np.random.Generator, *, batch_size: int = 64, num_train: int = 10_000,
                   num_eval: int = 5_000, C: float = 1.0, max_iter: int = 100,
                   encode_batch: int | None = None) -> dict[str, float]:
    """``beta_vae_score`` (evaluation accuracy) and ``beta_vae_train_accuracy``."""
    if batch_size < 1 or num_train < 1 or num_eval < 1:
        raise ValueError(f"batch_size={batch_size}, num_train={num_train}, num_eval={num_eval} must be positive")
    f1, f2, fixed = sample_pairs(data, rng, num_train + num_eval, batch_size)
    x = pair_features(data, represent, rng, f1, f2, encode_batch)
    return beta_vae_on_features(x[:num_train], fixed[:num_train], x[num_train:], fixed[num_train:], C=C,
                                max_iter=max_iter)
