"""Mutual Information Gap (MIG).

Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs", eq. 6:
MIG = 1/K sum_k (I(z_j(k); v_k) - I(z_j'(k); v_k)) / H(v_k), with j(k), j'(k) the latents of
highest and second-highest mutual information with factor v_k. This is disentanglement_lib's
discrete version (``evaluation/metrics/mig.py``): posterior means on 10,000 sampled points, each
latent discretised into 20 equal-width bins, mutual information from the contingency table.
Factors that are constant in the sample (zero entropy, e.g. dSprites' colour) are excluded
(disentanglement_lib would divide by zero). Settings as ``mig.gin`` (num_train 10,000, 20 bins) and
``compute_mig`` (batch_size 16: points per sampling call; the model sees ``encode_batch`` at a time).
"""

from __future__ import annotations

import numpy as np

from dislab.metrics._sampling import check_codes, sample_codes
from dislab.metrics.information import discrete_entropy, discrete_mutual_info, histogram_discretize


def mutual_info_matrix(codes, factors, *, num_bins: int = 20) -> np.ndarray:
    """I(z_i; v_k) in nats after histogram discretisation, shape (n_latents, n_factors)."""
    codes, factors = check_codes(codes, factors)
    return discrete_mutual_info(histogram_discretize(codes, num_bins), factors)


def mig_on_codes(codes, factors, *, num_bins: int = 20) -> dict[str, float]:
    codes, factors = check_codes(codes, factors)
    if codes.shape[1] < 2:
        raise ValueError(f"MIG needs at least 2 latents, got {codes.shape[1]}")
    h = discrete_entropy(factors)
    keep = h > 0
    if not keep.any():
        raise ValueError("MIG needs at least one factor that varies in the sample")
    m = discrete_mutual_info(histogram_discretize(codes, num_bins), factors[:, keep])
    top = np.sort(m, axis=0)[::-1]
    return {"mig": float(np.mean((top[0] - top[1]) / h[keep]))}


def mig(data, represent, rng: np.random.Generator, *, num_train: int = 10_000, num_bins: int = 20,
        batch_size: int = 16, encode_batch: int | None = None) -> dict[str, float]:
    codes, factors = sample_codes(data, represent, num_train, rng, batch_size, encode_batch)
    return mig_on_codes(codes, factors, num_bins=num_bins)
