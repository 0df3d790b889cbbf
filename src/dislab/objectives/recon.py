"""Reconstruction losses, summed over pixels and channels, averaged over the batch: disentanglement_lib
``methods/shared/losses.py`` (``bernoulli_loss``, ``l2_loss``, activation "logits"), value for value.
A per-pixel mean would silently rescale every regulariser weight (beta, gamma, lambda).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

RECON_LOSSES = ("bernoulli", "gaussian")


def reconstruction_loss(logits: torch.Tensor, x: torch.Tensor, kind: str = "bernoulli") -> torch.Tensor:
    """Per-example loss summed over pixels and channels, then averaged over the batch.

    bernoulli: binary cross-entropy with logits, -log Bernoulli(x; sigmoid(logits)) (x in [0, 1], also
    non-binary targets), disentanglement_lib's ``bernoulli_loss`` (no entropy subtracted).
    gaussian: disentanglement_lib's ``l2_loss``, the squared error ||x - sigmoid(logits)||^2, which is
    -log N(x; sigmoid(logits), 1/2) less its constant (P/2 log pi for P pixels): a fixed variance of 1/2,
    so its regulariser weights mean what they mean in disentanglement_lib's l2 runs.
    """
    b = x.shape[0]
    if kind == "bernoulli":
        return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / b
    if kind == "gaussian":
        return (x - torch.sigmoid(logits)).pow(2).sum() / b
    raise ValueError(f"recon={kind!r} is not a reconstruction loss; allowed: {', '.join(RECON_LOSSES)}")
