"""Unsupervised scores: Gaussian total correlation, Gaussian Wasserstein correlation, mutual information.

Locatello et al. 2019, "Challenging Common Assumptions in the Unsupervised Learning of Disentangled
Representations", Sec. 5 / Appendix: with Sigma the covariance of the codes,
- total correlation of a Gaussian with that covariance, KL(N(0, Sigma) || N(0, diag Sigma))
  = 1/2 (sum_d log Sigma_dd - log det Sigma);
- Wasserstein-2 distance between that Gaussian and the product of its marginals,
  2 tr Sigma - 2 tr (Sigma diag Sigma)^(1/2), and the same divided by tr Sigma;
- the mean mutual information between pairs of distinct latents after 20-bin histogram
  discretisation.
No ground-truth factors are used.

Checked against disentanglement_lib ``evaluation/metrics/unsupervised_metrics.py``
(``gaussian_total_correlation``, ``gaussian_wasserstein_correlation``, ``unsupervised_metrics``:
``np.cov`` with ddof=1, ``scipy.linalg.sqrtm``, the mutual information matrix with its diagonal
zeroed, summed and divided by D^2 - D) and ``unsupervised.gin`` (num_train 10,000, 20 bins,
batch_size 16). Fixes: a constant latent makes Sigma singular and disentanglement_lib's total
correlation NaN (log 0 - log 0); here the Gaussian scores are computed over the non-constant latents
(a constant latent is independent of the rest, so it adds nothing), and they are 0 when no latent
varies; with a single latent the mutual information score is 0 (0/0 there). Keys:
``gaussian_total_correlation``, ``gaussian_wasserstein_correlation``,
``gaussian_wasserstein_correlation_norm``, ``mutual_info_score`` (as disentanglement_lib names them).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from dislab.metrics._sampling import sample_codes
from dislab.metrics.information import discrete_mutual_info, histogram_discretize


def gaussian_total_correlation(cov: np.ndarray) -> float:
    return float(0.5 * (np.sum(np.log(np.diag(cov))) - np.linalg.slogdet(cov)[1]))


def gaussian_wasserstein_correlation(cov: np.ndarray) -> float:
    root = scipy.linalg.sqrtm(cov * np.diag(cov)[:, None])
    return float(2 * np.trace(cov) - 2 * np.real(np.trace(root)))


def unsupervised_on_codes(codes, *, num_bins: int = 20) -> dict[str, float]:
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or len(codes) < 2:
        raise ValueError(f"codes {codes.shape} must be (n >= 2, n_latents)")
    if not np.isfinite(codes).all():
        raise ValueError("codes contain NaN or infinite values")
    d = codes.shape[1]
    live = codes.var(axis=0) > 0
    out = dict.fromkeys(["gaussian_total_correlation", "gaussian_wasserstein_correlation",
                         "gaussian_wasserstein_correlation_norm"], 0.0)
    if live.any():
        cov = np.atleast_2d(np.cov(codes[:, live], rowvar=False))
        out["gaussian_total_correlation"] = gaussian_total_correlation(cov)
        out["gaussian_wasserstein_correlation"] = gaussian_wasserstein_correlation(cov)
        out["gaussian_wasserstein_correlation_norm"] = out["gaussian_wasserstein_correlation"] / float(np.trace(cov))
    mi = 0.0
    if d > 1:
        disc = histogram_discretize(codes, num_bins)
        m = discrete_mutual_info(disc, disc)
        np.fill_diagonal(m, 0.0)
        mi = float(m.sum() / (d * d - d))
    out["mutual_info_score"] = mi
    return out


def unsupervised(data, represent, rng: np.random.Generator, *, num_train: int = 10_000, batch_size: int = 16,
                 num_bins: int = 20, encode_batch: int | None = None) -> dict[str, float]:
    codes, _ = sample_codes(data, represent, num_train, rng, batch_size, encode_batch)
    return unsupervised_on_codes(codes, num_bins=num_bins)


unsupervised.needs_factors = False  # scores the codes alone: runs on data sets without factors
