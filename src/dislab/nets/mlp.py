"""Fully connected encoder/decoder pair (any image size).

disentanglement_lib's ``fc_encoder`` / ``fc_decoder`` (Locatello et al. 2019, Table 1):
encoder FC 1200 ReLU, FC 1200 ReLU, FC 2*z_dim; decoder FC 1200 tanh x3, FC pixels.
``hidden`` sets the width (default 1200 as there; small values give fast tests).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, x_shape=(1, 64, 64), z_dim: int = 10, hidden: int = 1200):
        super().__init__()
        if z_dim <= 0:
            raise ValueError(f"z_dim={z_dim} must be a positive integer")
        self.x_shape, self.z_dim = tuple(x_shape), z_dim
        d = math.prod(x_shape)
        self.encoder = nn.Sequential(
            nn.Flatten(),
            nn.Linear(d, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 2 * z_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(z_dim, hidden), nn.Tanh(),
            nn.Linear(hidden, hidden), nn.Tanh(),
            nn.Linear(hidden, hidden), nn.Tanh(),
            nn.Linear(hidden, d),
            nn.Unflatten(1, tuple(x_shape)),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)
