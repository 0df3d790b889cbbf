"""Pieces of the density-ratio (discriminator) methods.

- ``permute_dims``: Kim & Mnih 2018, "Disentangling by Factorising", Algorithm 1: samples of
  q-bar(z) = prod_d q(z_d) are drawn by permuting each latent dimension independently across the
  batch, which keeps every marginal q(z_d) and breaks the dependence between dimensions.
- ``density_ratio_tc``: the discriminator's TC estimate, eq. 3: TC(z) = KL(q(z)||q-bar(z)) ~=
  E_q(z)[log D(z) / (1 - D(z))], which for a 2-way softmax D is the logit difference.
"""

from __future__ import annotations

import torch


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None, u: torch.Tensor | None = None
                 ) -> torch.Tensor:
    """Each column of ``z`` (B, D) shuffled by its own random permutation of the batch rows: the argsort of
    uniform draws ``u`` (B, D) (None: drawn here)."""
    b, d = z.shape
    if u is None:
        u = torch.rand(b, d, generator=generator, device=z.device)
    idx = torch.argsort(u, dim=0)
    return torch.gather(z, 0, idx)


def density_ratio_tc(logits: torch.Tensor) -> torch.Tensor:
    """Batch mean of logit[:, 0] - logit[:, 1] = log D(z) / (1 - D(z)) with class 0 = "from q(z)"."""
    return (logits[:, 0] - logits[:, 1]).mean()
