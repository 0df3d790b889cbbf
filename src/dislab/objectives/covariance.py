"""Covariance penalties of DIP-VAE (Kumar et al. 2018, "Variational Inference of Disentangled
Latent Concepts from Unlabeled Observations", Section 3, eqs. 6-7).

DIP-VAE-I matches Cov_p(x)[mu(x)] to the identity; DIP-VAE-II matches the covariance of the
aggregate posterior, Cov_q(z)[z] = E_p(x)[Sigma(x)] + Cov_p(x)[mu(x)] (law of total covariance).
Both estimated on the batch: the covariance of the means centres on the batch axis and divides by
B (disentanglement_lib ``compute_covariance_z_mean``); E[Sigma] is the batch mean of the diagonal
posterior covariances diag(exp(logvar)), which changes the diagonal only.
"""

from __future__ import annotations

import torch

DIP_KINDS = ("i", "ii")


def covariance_of_means(mu: torch.Tensor) -> torch.Tensor:
    """Biased (divide by B) covariance over the batch of the posterior means, shape (D, D)."""
    centred = mu - mu.mean(0, keepdim=True)
    return centred.T @ centred / mu.shape[0]


def dip_covariance(mu: torch.Tensor, logvar: torch.Tensor, kind: str = "i") -> torch.Tensor:
    """The matrix DIP-VAE-``kind`` pushes towards the identity."""
    cov = covariance_of_means(mu)
    if kind == "i":
        return cov
    if kind == "ii":
        return cov + torch.diag(logvar.exp().mean(0))
    raise ValueError(f"kind={kind!r} is not a DIP-VAE variant; allowed: {', '.join(DIP_KINDS)}")


def diag_off_diag_penalty(cov: torch.Tensor, lambda_od: float, lambda_d: float) -> torch.Tensor:
    """lambda_od * sum_{i != j} cov_ij^2 + lambda_d * sum_i (cov_ii - 1)^2 (Kumar et al., eq. 6)."""
    diag = torch.diagonal(cov)
    off = cov - torch.diag(diag)
    return lambda_od * off.pow(2).sum() + lambda_d * (diag - 1).pow(2).sum()
