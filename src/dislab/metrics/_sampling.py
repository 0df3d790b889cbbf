"""Helpers shared by the metrics: sampling (representation, factor) pairs and discretising codes.

After disentanglement_lib ``evaluation/metrics/utils.py`` (``generate_batch_factor_code``,
``histogram_discretize``, ``discrete_mutual_info``, ``discrete_entropy``), with arrays laid out
(n_samples, n_latents) / (n_samples, n_factors) instead of transposed.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from sklearn.metrics import mutual_info_score

Represent = Callable[[np.ndarray], np.ndarray]


def sample_codes(data, represent: Represent, num_points: int, rng: np.random.Generator,
                 batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``num_points`` factor vectors uniformly, render them and encode them in batches.
    Returns (codes (n, D) float64, factors (n, K) int64)."""
    if num_points <= 0 or batch_size <= 0:
        raise ValueError(f"num_points={num_points} and batch_size={batch_size} must be positive")
    codes, factors = [], []
    for start in range(0, num_points, batch_size):
        f, x = data.sample(min(batch_size, num_points - start), rng)
        codes.append(np.asarray(represent(x), dtype=np.float64))
        factors.append(f)
    return np.concatenate(codes), np.concatenate(factors)


def check_codes(codes, factors) -> tuple[np.ndarray, np.ndarray]:
    codes, factors = np.asarray(codes, dtype=np.float64), np.asarray(factors)
    if codes.ndim != 2 or factors.ndim != 2 or len(codes) != len(factors):
        raise ValueError(f"codes {codes.shape} and factors {factors.shape} must be (n, n_latents) and (n, n_factors)")
    if not np.isfinite(codes).all():
        raise ValueError("codes contain NaN or infinite values")
    return codes, factors


def histogram_discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Per latent, the index of the equal-width bin (over that latent's range) each value falls in."""
    out = np.empty(codes.shape, dtype=np.int64)
    for i in range(codes.shape[1]):
        edges = np.histogram(codes[:, i], num_bins)[1]
        out[:, i] = np.digitize(codes[:, i], edges[:-1])
    return out


def discrete_mutual_info(codes_d: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Mutual information (nats) between each discrete latent and each factor, shape (D, K)."""
    return np.array([[mutual_info_score(factors[:, j], codes_d[:, i]) for j in range(factors.shape[1])]
                     for i in range(codes_d.shape[1])])


def discrete_entropy(factors: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each discrete factor, shape (K,)."""
    return np.array([mutual_info_score(factors[:, j], factors[:, j]) for j in range(factors.shape[1])])
