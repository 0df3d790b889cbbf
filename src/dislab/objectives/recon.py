"""Reconstruction negative log-likelihoods, summed over pixels and channels, averaged over the batch.

As in disentanglement_lib ``methods/shared/losses.py`` (``bernoulli_loss``, ``l2_loss``).
A per-pixel mean would silently rescale every regulariser weight (beta, gamma, lambda).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

RECON_LOSSES = ("bernoulli", "gaussian")


def reconstruction_loss(logits: torch.Tensor, x: torch.Tensor, kind: str = "bernoulli") -> torch.Tensor:
    """-log p(x|z) per batch element summed, then averaged over the batch.

    bernoulli: binary cross-entropy with logits (x in [0, 1], also non-binary targets).
    gaussian: unit-variance Gaussian on sigmoid(logits): 0.5 * ||x - sigmoid(logits)||^2 + const,
    with the constant 0.5 * log(2 pi) per pixel kept so the value is a true NLL.
    """
    b = x.shape[0]
    if kind == "bernoulli":
        return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / b
    if kind == "gaussian":
        se = (torch.sigmoid(logits) - x).pow(2).sum() / b
        return 0.5 * se + 0.5 * math.log(2 * math.pi) * x[0].numel()
    raise ValueError(f"recon={kind!r} is not a reconstruction loss; allowed: {', '.join(RECON_LOSSES)}")
