"""Variational lower bounds on the mutual information I(c; G(z, c)) of InfoGAN (Chen et al. 2016,
"InfoGAN: Interpretable Representation Learning by Information Maximizing GANs", eq. 5 / Lemma
5.1): L_I = E[log Q(c|x)] + H(c) <= I(c; x), with x = G(z, c) and c from its prior.

Every code is scored separately and the bounds are summed (codes are independent a priori).
As in the reference implementation (openai/InfoGAN ``infogan_trainer.py``: MI_disc = H(c) -
CrossEnt), H(c) is kept so the logged value is a true lower bound: for a uniform categorical code
over K classes the bound is log K - CE <= log K.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dislab.objectives.gaussian import gaussian_log_density


def categorical_mi_lower_bound(logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``logits`` (B, n_cat, K) of Q(c|x); ``index`` (B, n_cat) the sampled classes (uniform prior).
    Returns sum over codes of log K - E[-log Q(c|x)], batch-averaged."""
    b, n, k = logits.shape
    ce = F.cross_entropy(logits.reshape(b * n, k), index.reshape(b * n), reduction="sum") / b
    return n * math.log(k) - ce


def uniform_gaussian_mi_lower_bound(mean: torch.Tensor, c: torch.Tensor, logvar: torch.Tensor | None = None,
                                    low: float = -1.0, high: float = 1.0) -> torch.Tensor:
    """Continuous codes c ~ U(low, high)^D scored by a factored Gaussian Q(c|x) = N(mean, exp(logvar))
    (unit variance when ``logvar`` is None, as openai/InfoGAN's ``fix_std=True``).
    Returns D log(high - low) + E[log Q(c|x)] summed over codes, batch-averaged."""
    logvar = torch.zeros_like(mean) if logvar is None else logvar
    log_q = gaussian_log_density(c, mean, logvar).sum(1).mean()
    return c.shape[1] * math.log(high - low) + log_q
