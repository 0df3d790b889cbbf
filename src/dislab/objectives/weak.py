"""Loss terms of the weakly-supervised methods on pairs (Locatello et al. 2020, "Weakly-Supervised
Disentanglement Without Compromises", ICML: the averaged posteriors and the adaptive threshold;
the paper's equation numbers were not checked here), checked against disentanglement_lib
``methods/weak/weak_vae.py``.

For a pair (x1, x2) with posteriors q(z|x1), q(z|x2) (diagonal Gaussians, (B, D) means and
log-variances), the latents estimated to be shared are replaced in BOTH posteriors by an average
of the two, a(q1, q2); the others keep their own posterior. Which latents differ:

- ``adaptive_changed`` (Ada-GVAE, Ada-ML-VAE: dlib ``aggregate_argmax``): from
  delta_i = KL(q(z_i|x1) || q(z_i|x2)), the latents in the upper of two equal-width bins over
  [min_i delta_i, max_i delta_i] (``discretize_in_bins``, TF's ``histogram_fixed_width_bins``,
  nbins=2); i.e. delta_i >= tau = (max delta + min delta) / 2, the paper's threshold;
- ``labelled_changed`` (GVAE, ML-VAE with known changes: dlib ``aggregate_labels``): latent j
  stands for factor j, and the latents of the factors that changed keep their own posterior.

The averages a(q1, q2):

- ``arithmetic_mean`` (GVAE, Hosoya 2019): mean (mu1 + mu2) / 2, variance (v1 + v2) / 2;
- ``product_of_experts`` (ML-VAE, Bouchacourt et al. 2018) as dlib ``MLVae.model_fn``: the
  product's mean (mu1 / v1 + mu2 / v2) / (1 / v1 + 1 / v2) with the variance 2 v1 v2 / (v1 + v2),
  twice the product's variance (the harmonic mean of v1 and v2: two equal posteriors stay as they are).
"""

from __future__ import annotations

import math

import torch


def pair_kl(mu1: torch.Tensor, logvar1: torch.Tensor, mu2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """KL(N(mu1, v1) || N(mu2, v2)) per latent, (B, D). dlib's ``compute_kl`` is twice this (the bins
    below do not change under a positive scale)."""
    return 0.5 * (torch.exp(logvar1 - logvar2) + (mu2 - mu1).pow(2) * torch.exp(-logvar2) - 1 + logvar2 - logvar1)


def adaptive_changed(delta: torch.Tensor) -> torch.Tensor:
    """(B, D) bool: the latents of each row of ``delta`` in the upper of two equal-width bins over the
    row's [min, max] (TF's rule: floor(2 (delta - min) / (max - min)) clipped to [0, 1] equals 1),
    i.e. delta >= (max + min) / 2. A row of equal values (0/0) keeps no latent: all are averaged."""
    lo, hi = delta.min(1, keepdim=True).values, delta.max(1, keepdim=True).values
    bins = torch.floor(2 * ((delta - lo) / (hi - lo))).clamp(0, 1)
    return bins == 1


def labelled_changed(changed_factors: torch.Tensor, z_dim: int) -> torch.Tensor:
    """(B, z_dim) bool: latent j for factor j changed in the pair (K <= z_dim factors); the latents past
    the factors are shared by every pair."""
    b, k = changed_factors.shape
    if k > z_dim:
        raise ValueError(f"labelled pairs need z_dim >= the number of factors ({k}); got z_dim={z_dim}")
    out = torch.zeros(b, z_dim, dtype=torch.bool, device=changed_factors.device)
    out[:, :k] = changed_factors
    return out


def arithmetic_mean(mu1, logvar1, mu2, logvar2) -> tuple[torch.Tensor, torch.Tensor]:
    """GVAE's average: (mean, log-variance) of mean (mu1 + mu2) / 2 and variance (v1 + v2) / 2."""
    return 0.5 * mu1 + 0.5 * mu2, torch.logaddexp(logvar1, logvar2) - math.log(2)


def product_of_experts(mu1, logvar1, mu2, logvar2) -> tuple[torch.Tensor, torch.Tensor]:
    """ML-VAE's average (dlib's form): mean (mu1 v2 + mu2 v1) / (v1 + v2), variance 2 v1 v2 / (v1 + v2)."""
    w1 = torch.sigmoid(logvar2 - logvar1)  # v2 / (v1 + v2)
    mean = w1 * mu1 + (1 - w1) * mu2
    return mean, math.log(2) + logvar1 + logvar2 - torch.logaddexp(logvar1, logvar2)


def share(mu, logvar, changed, average) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Both images' posteriors (B, 2, D) with the latents not ``changed`` (B, D) replaced in each by
    ``average`` of the two (dlib ``aggregate_*``: one mask, applied to both images), and the mean
    number of latents shared per pair."""
    avg_mu, avg_logvar = average(mu[:, 0], logvar[:, 0], mu[:, 1], logvar[:, 1])
    keep = changed.unsqueeze(1)
    return (torch.where(keep, mu, avg_mu.unsqueeze(1)), torch.where(keep, logvar, avg_logvar.unsqueeze(1)),
            (~changed).sum(1).float().mean())
