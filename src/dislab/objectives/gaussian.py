"""Gaussian KL divergence and log densities, and the minibatch estimators of log q(z).

- ``gaussian_kl``: KL(N(mu, exp(logvar)) || N(0, I)) per latent, closed form
  (Kingma & Welling 2014, Appendix B).
- ``log_q_z`` / ``log_prod_q_zd``: minibatch estimators of the aggregate posterior
  q(z) = 1/N sum_n q(z|x_n) of Chen et al. 2018, "Isolating Sources of Disentanglement in
  VAEs", Section 3 / Appendix C.1 (minibatch-weighted sampling, MWS) and C.2 (minibatch
  stratified sampling, MSS).
"""

from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2 * math.pi)
ESTIMATORS = ("mws", "mss")


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per sample and latent, shape (B, D)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(z; mu, exp(logvar)) (broadcasting), all constants kept."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar))


def _pairwise_log_qzd(z, mu, logvar):
    """log q(z_i,d | x_j) for every pair: shape (B_i, B_j, D)."""
    return gaussian_log_density(z.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0))


def _log_weights(batch: int, dataset_size: int, estimator: str, like: torch.Tensor) -> torch.Tensor:
    """log w_ij such that q(z_i) ~= sum_j w_ij q(z_i|x_j), shape (B, B), dtype and device of ``like``.

    MWS (Chen et al., eq. S9): the batch is treated as M draws with replacement from the N
    data points: w_ij = 1 / (N M) for every j.
    MSS (Chen et al., App. C.2; derived here, not copied): q(z_i) = 1/N q(z_i|x_i) +
    1/N sum_{n != i} q(z_i|x_n). z_i's own data point enters exactly with weight 1/N; the
    other N - 1 points are estimated without bias by the other M - 1 batch members, drawn
    from them: weight (N - 1) / (N (M - 1)). Unbiased for q(z_i), so E[log] is a lower
    bound tightening with M (exact when M = N).
    """
    n, m = float(dataset_size), batch
    if estimator == "mws":
        return torch.full((m, m), -math.log(n * m), dtype=like.dtype, device=like.device)
    if estimator == "mss":
        if m < 2:
            raise ValueError("the stratified estimator needs a batch of at least 2")
        w = torch.full((m, m), math.log((n - 1) / (n * (m - 1))), dtype=like.dtype, device=like.device)
        w.fill_diagonal_(-math.log(n))
        return w
    raise ValueError(f"estimator={estimator!r} is not known; allowed: {', '.join(ESTIMATORS)}")


def log_qz_terms(z, mu, logvar, dataset_size: int, estimator: str = "mws"):
    """Minibatch estimates for each sample i of (log q(z_i|x_i), log q(z_i), sum_d log q(z_id),
    log p(z_i)), each of shape (B,)."""
    b = z.shape[0]
    pair = _pairwise_log_qzd(z, mu, logvar)  # (B, B, D)
    logw = _log_weights(b, dataset_size, estimator, z)  # (B, B)
    log_qz = torch.logsumexp(logw + pair.sum(2), dim=1)
    log_qzd = torch.logsumexp(logw.unsqueeze(2) + pair, dim=1).sum(1)
    log_qz_x = gaussian_log_density(z, mu, logvar).sum(1)
    log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(1)
    return log_qz_x, log_qz, log_qzd, log_pz


def kl_decomposition(z, mu, logvar, dataset_size: int, estimator: str = "mws") -> dict[str, torch.Tensor]:
    """Chen et al. 2018, eq. 2: E KL(q(z|x)||p(z)) = I_q(x; z) + TC(z) + sum_d KL(q(z_d)||p(z_d)).

    Returns batch means of the estimated index-code MI, total correlation and dimension-wise KL.
    """
    log_qz_x, log_qz, log_qzd, log_pz = log_qz_terms(z, mu, logvar, dataset_size, estimator)
    return {
        "mi": (log_qz_x - log_qz).mean(),
        "tc": (log_qz - log_qzd).mean(),
        "dwkl": (log_qzd - log_pz).mean(),
    }
