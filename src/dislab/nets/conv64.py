"""disentanglement_lib's convolutional encoder/decoder for 64x64 images, as its code builds them.

Locatello et al. 2019, "Challenging Common Assumptions in the Unsupervised Learning of
Disentangled Representations", Table 1 (the architecture of every method of the study), as
implemented by disentanglement_lib ``methods/shared/architectures.py`` (``conv_encoder`` /
``deconv_decoder``), the code behind its released models and the paper's numbers:

encoder: conv 4x4 s2 32, conv 4x4 s2 32, conv 2x2 s2 64, conv 2x2 s2 64 (ReLU each) -> FC 256 ReLU
         -> two separate FC heads: means (z_dim) and log-variances (z_dim)
decoder: FC 256 ReLU -> FC 1024 ReLU -> reshape 64x4x4 -> deconv 4x4 s2 64, 32, 32 (ReLU) -> deconv
         4x4 s2 C (logits)
The 2x2 kernels in encoder layers 3-4 are the code's; the paper's table says 4x4 (disentanglement_lib
issue #23 / PR #35): that variant is ``net=conv64_paper`` (``conv64_paper.py``).

TensorFlow's "same" padding at stride 2 on even sizes pads k - 2 in total, split evenly: padding 1
for 4x4 kernels, 0 for 2x2; for the transposed convolutions (the gradient of such a convolution)
4x4 stride 2 "same" doubles the size, padding 1 here. Initialisation is ``tf.layers``' default:
glorot-uniform kernels, U(-l, l) with l = sqrt(6 / (fan_in + fan_out)), TF's fans (conv kernel
(kh, kw, in, out): fan_in = kh kw in, fan_out = kh kw out; a transposed conv's kernel is
(kh, kw, out, in), so its fans swap, which leaves the sum unchanged; dense: in, out), and zero
biases. One difference of layout only: TF flattens (and reshapes) in (h, w, c) order, PyTorch in
(c, h, w); the dense layers' weights are a fixed permutation of each other, the same function class
and the same (i.i.d.) initial distribution.
Encoder parameters for 1x64x64 and z_dim 10: 309,204 (``tests/test_nets.py`` pins every layer).
"""

from __future__ import annotations

import math

import torch
from torch import nn

CHANNELS = (32, 32, 64, 64)


def same_padding(kernel: int, stride: int = 2) -> int:
    """TensorFlow's "same" padding per side for an even input size (total max(k - s, 0), even here)."""
    total = max(kernel - stride, 0)
    if total % 2:
        raise ValueError(f"kernel {kernel} at stride {stride} needs asymmetric 'same' padding; use an even kernel")
    return total // 2


def tf_fans(layer: nn.Module) -> tuple[int, int]:
    """(fan_in, fan_out) as TensorFlow computes them for ``tf.layers``' kernel of this layer."""
    if isinstance(layer, nn.Linear):
        return layer.in_features, layer.out_features
    field = math.prod(layer.kernel_size)
    if isinstance(layer, nn.ConvTranspose2d):  # TF kernel (kh, kw, filters, in_channels)
        return field * layer.out_channels, field * layer.in_channels
    return field * layer.in_channels, field * layer.out_channels


def tf_init_(module: nn.Module) -> None:
    """Glorot-uniform kernels with TF's fans and zero biases, for every dense and (transposed) conv layer."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            fan_in, fan_out = tf_fans(layer)
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            with torch.no_grad():
                layer.weight.uniform_(-limit, limit)
                layer.bias.zero_()


class Conv64(nn.Module):
    #: encoder conv kernel sizes (disentanglement_lib's code; ``Conv64Paper``: the paper's table)
    kernels = (4, 4, 2, 2)

    def __init__(self, x_shape=(1, 64, 64), z_dim: int = 10):
        super().__init__()
        c, h, w = x_shape
        name = type(self).__module__.rsplit(".", 1)[-1]
        if (h, w) != (64, 64):
            raise ValueError(f"net={name} needs 64x64 images, got {h}x{w}; use net=mlp for other sizes")
        if z_dim <= 0:
            raise ValueError(f"z_dim={z_dim} must be a positive integer")
        self.x_shape, self.z_dim = tuple(x_shape), z_dim
        convs, cin = [], c
        for cout, k in zip(CHANNELS, self.kernels, strict=True):
            convs += [nn.Conv2d(cin, cout, k, 2, same_padding(k)), nn.ReLU()]
            cin = cout
        self.encoder = nn.Sequential(*convs, nn.Flatten(), nn.Linear(64 * 4 * 4, 256), nn.ReLU())
        self.means = nn.Linear(256, z_dim)
        self.log_var = nn.Linear(256, z_dim)
        ups = [m for cin, cout in ((64, 64), (64, 32), (32, 32))
               for m in (nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.ReLU())]
        self.decoder = nn.Sequential(
            nn.Linear(z_dim, 256), nn.ReLU(),
            nn.Linear(256, 64 * 4 * 4), nn.ReLU(),
            nn.Unflatten(1, (64, 4, 4)),
            *ups,
            nn.ConvTranspose2d(32, c, 4, 2, 1),
        )
        tf_init_(self)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.means(h), self.log_var(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)
