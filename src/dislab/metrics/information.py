"""Information theory on discrete samples, shared by the metrics and the pictures that explain them:
discretising codes into equal-width bins, the mutual information between discrete columns and their
entropy, in nats.

After disentanglement_lib ``evaluation/metrics/utils.py`` (``histogram_discretize``, ``discrete_mutual_info``,
``discrete_entropy``), with arrays laid out (n_samples, n_latents) / (n_samples, n_factors) instead of
transposed.
"""

from __future__ import annotations

import math

import numpy as np


def histogram_discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Per latent, the index (1..num_bins) of the equal-width bin over that latent's range each value
    falls in (disentanglement_lib's ``_histogram_discretize``)."""
    out = np.empty(codes.shape, dtype=np.int64)
    for i in range(codes.shape[1]):
        edges = np.histogram(codes[:, i], num_bins)[1]
        out[:, i] = np.digitize(codes[:, i], edges[:-1])
    return out


def _labels(column: np.ndarray) -> tuple[np.ndarray, int]:
    values, inverse = np.unique(column, return_inverse=True)
    return inverse.reshape(-1), len(values)


def _mutual_info(a: tuple[np.ndarray, int], b: tuple[np.ndarray, int]) -> float:
    """``sklearn.metrics.mutual_info_score`` for label indices (inverse, n_values): the same contingency
    table, the same formula and order of terms (so the same float), without its per-call overhead."""
    (ia, na), (ib, nb) = a, b
    if na == 1 or nb == 1:
        return 0.0
    table = np.bincount(ia * nb + ib, minlength=na * nb).reshape(na, nb)
    nzx, nzy = np.nonzero(table)
    nz = table[nzx, nzy]
    total = table.sum()
    pi, pj = table.sum(axis=1), table.sum(axis=0)
    p = nz / total
    log_outer = -np.log(pi.take(nzx).astype(np.int64) * pj.take(nzy).astype(np.int64)) + math.log(pi.sum()) \
        + math.log(pj.sum())
    mi = p * (np.log(nz) - math.log(total)) + p * log_outer
    mi = np.where(np.abs(mi) < np.finfo(mi.dtype).eps, 0.0, mi)
    return float(np.clip(mi.sum(), 0.0, None))


def discrete_mutual_info(codes_d: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Mutual information (nats) between each discrete latent and each factor, shape (D, K); equal to
    ``mutual_info_score(factors[:, k], codes_d[:, d])`` as disentanglement_lib computes it."""
    fl = [_labels(factors[:, k]) for k in range(factors.shape[1])]
    cl = [_labels(codes_d[:, d]) for d in range(codes_d.shape[1])]
    return np.array([[_mutual_info(f, c) for f in fl] for c in cl]).reshape(len(cl), len(fl))


def discrete_entropy(factors: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each discrete factor, shape (K,)."""
    return np.array([_mutual_info(lab, lab) for lab in (_labels(factors[:, k]) for k in range(factors.shape[1]))])
