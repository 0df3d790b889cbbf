"""disentanglement_lib's convolutional encoder/decoder for 64x64 images.

Locatello et al. 2019, "Challenging Common Assumptions in the Unsupervised Learning of
Disentangled Representations", Table 1 (architecture shared by every method of the study);
checked against disentanglement_lib ``methods/shared/architectures.py``
(``conv_encoder`` / ``deconv_decoder``):

encoder: 4x [conv 4x4 stride 2, 32, 32, 64, 64 channels, ReLU] -> FC 256 ReLU -> FC 2*z_dim
decoder: FC 256 ReLU -> FC 4*4*64 ReLU -> 4x [deconv 4x4 stride 2, 64, 32, 32, C channels]
TensorFlow's "same" padding for a 4x4 kernel at stride 2 on even sizes is padding 1 here.
"""

from __future__ import annotations

import torch
from torch import nn


class Conv64(nn.Module):
    def __init__(self, x_shape=(1, 64, 64), z_dim: int = 10):
        super().__init__()
        c, h, w = x_shape
        if (h, w) != (64, 64):
            raise ValueError(f"net=conv64 needs 64x64 images, got {h}x{w}; use net=mlp for other sizes")
        if z_dim <= 0:
            raise ValueError(f"z_dim={z_dim} must be a positive integer")
        self.x_shape, self.z_dim = tuple(x_shape), z_dim
        relu = nn.ReLU
        self.encoder = nn.Sequential(
            nn.Conv2d(c, 32, 4, 2, 1), relu(),
            nn.Conv2d(32, 32, 4, 2, 1), relu(),
            nn.Conv2d(32, 64, 4, 2, 1), relu(),
            nn.Conv2d(64, 64, 4, 2, 1), relu(),
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, 256), relu(),
            nn.Linear(256, 2 * z_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(z_dim, 256), relu(),
            nn.Linear(256, 64 * 4 * 4), relu(),
            nn.Unflatten(1, (64, 4, 4)),
            nn.ConvTranspose2d(64, 64, 4, 2, 1), relu(),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), relu(),
            nn.ConvTranspose2d(32, 32, 4, 2, 1), relu(),
            nn.ConvTranspose2d(32, c, 4, 2, 1),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)
