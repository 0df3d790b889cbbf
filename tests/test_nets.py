"""The networks layer by layer: disentanglement_lib's conv64 (``architectures.py`` ``conv_encoder`` /
``deconv_decoder``, hand-typed below), its paper-table variant, and TensorFlow's initialisation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dislab.nets.conv64 import Conv64
from dislab.nets.conv64_paper import Conv64Paper

# (kind, kernel, stride, padding, in, out, output shape (C, H, W) or (features,)) for 1x64x64, z_dim 10;
# disentanglement_lib: tf.layers.conv2d(filters, kernel_size, strides=2, padding="same"), "same" at
# stride 2 on even sizes halves the size; dense layers; conv2d_transpose(kernel 4, stride 2, "same").
ENCODER = [
    ("conv", 4, 2, 1, 1, 32, (32, 32, 32)),
    ("conv", 4, 2, 1, 32, 32, (32, 16, 16)),
    ("conv", 2, 2, 0, 32, 64, (64, 8, 8)),
    ("conv", 2, 2, 0, 64, 64, (64, 4, 4)),
    ("dense", None, None, None, 1024, 256, (256,)),
]
HEADS = [("dense", None, None, None, 256, 10, (10,))] * 2  # means, log_var: separate dense layers
DECODER = [
    ("dense", None, None, None, 10, 256, (256,)),
    ("dense", None, None, None, 256, 1024, (1024,)),
    ("deconv", 4, 2, 1, 64, 64, (64, 8, 8)),
    ("deconv", 4, 2, 1, 64, 32, (32, 16, 16)),
    ("deconv", 4, 2, 1, 32, 32, (32, 32, 32)),
    ("deconv", 4, 2, 1, 32, 1, (1, 64, 64)),
]
# glorot limit sqrt(6 / (fan_in + fan_out)), TF's fans: conv kh*kw*(in + out), dense in + out
FAN_SUMS = [16 * 33, 16 * 64, 4 * 96, 4 * 128, 1280, 266, 266, 266, 1280, 16 * 128, 16 * 96, 16 * 64, 16 * 33]


def _table(net: nn.Module, x: torch.Tensor):
    """Every parametrised layer in call order: (kind, kernel, stride, padding, in, out, output shape),
    and the activation that follows it (None for none)."""
    rows, calls = [], []
    kinds = {nn.Conv2d: "conv", nn.ConvTranspose2d: "deconv", nn.Linear: "dense"}

    def hook(mod, _inp, out):
        calls.append(mod)
        if type(mod) in kinds:
            k = mod.kernel_size[0] if hasattr(mod, "kernel_size") else None
            s = mod.stride[0] if hasattr(mod, "stride") else None
            p = mod.padding[0] if hasattr(mod, "padding") else None
            cin, cout = (mod.in_features, mod.out_features) if k is None else (mod.in_channels, mod.out_channels)
            rows.append([kinds[type(mod)], k, s, p, cin, cout, tuple(out.shape[1:])])

    handles = [m.register_forward_hook(hook) for m in net.modules() if not list(m.children())]
    mu, logvar = net.encode(x)
    logits = net.decode(mu)
    for h in handles:
        h.remove()
    acts = []
    for i, m in enumerate(calls):
        if type(m) in kinds:
            nxt = calls[i + 1] if i + 1 < len(calls) else None
            acts.append(type(nxt).__name__ if isinstance(nxt, nn.ReLU) else None)
    return rows, acts, (mu, logvar, logits)


def test_conv64_is_disentanglement_libs_network_layer_by_layer():
    torch.manual_seed(0)
    net = Conv64((1, 64, 64), 10)
    rows, acts, (mu, logvar, logits) = _table(net, torch.rand(2, 1, 64, 64))
    assert [tuple(r) for r in rows] == [*ENCODER, *HEADS, *DECODER]
    # ReLU after every layer but the two heads and the last deconvolution (logits)
    assert acts == ["ReLU"] * 5 + [None, None] + ["ReLU"] * 5 + [None]
    assert mu.shape == logvar.shape == (2, 10) and logits.shape == (2, 1, 64, 64)
    assert not torch.equal(mu, logvar)  # two heads, not one read twice
    assert sum(p.numel() for p in [*net.encoder.parameters(), *net.means.parameters(),
                                   *net.log_var.parameters()]) == 309_204
    assert sum(p.numel() for p in net.decoder.parameters()) == 381_313
    assert sum(p.numel() for p in net.parameters()) == 309_204 + 381_313


def test_conv64_paper_differs_only_in_the_kernels_of_encoder_layers_3_and_4():
    torch.manual_seed(0)
    rows, _, _ = _table(Conv64Paper((3, 64, 64), 10), torch.rand(2, 3, 64, 64))
    paper = [list(r) for r in [*ENCODER, *HEADS, *DECODER]]
    paper[0][4], paper[-1][5], paper[-1][6] = 3, 3, (3, 64, 64)  # three channels in and out
    paper[2][1:4] = paper[3][1:4] = [4, 2, 1]
    assert rows == paper
    enc = Conv64Paper((1, 64, 64), 10)
    assert sum(p.numel() for m in (enc.encoder, enc.means, enc.log_var) for p in m.parameters()) == 382_932


@pytest.mark.parametrize("cls", [Conv64, Conv64Paper])
def test_initialisation_is_tensorflows_glorot_uniform_with_zero_biases(cls):
    torch.manual_seed(0)
    net = cls((1, 64, 64), 10)
    layers = [m for part in (net.encoder, net.means, net.log_var, net.decoder) for m in part.modules()
              if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
    fan_sums = list(FAN_SUMS)
    if cls is Conv64Paper:
        fan_sums[2:4] = [16 * 96, 16 * 128]
    assert len(layers) == len(fan_sums)
    for layer, fans in zip(layers, fan_sums, strict=True):
        limit = math.sqrt(6 / fans)
        w = layer.weight.detach().double()
        assert torch.count_nonzero(layer.bias) == 0, layer
        assert w.abs().max() <= limit and w.abs().max() > 0.97 * limit, (layer, w.abs().max().item(), limit)
        # U(-l, l) has mean 0 and variance l^2 / 3 (>= 512 weights per layer: within ~4 % sd here)
        assert w.var().item() == pytest.approx(limit**2 / 3, rel=0.15), layer
        assert abs(w.mean().item()) < 0.1 * limit


def test_conv64_refuses_other_image_sizes():
    with pytest.raises(ValueError, match="net=conv64 needs 64x64 images, got 32x32"):
        Conv64((1, 32, 32), 10)
    with pytest.raises(ValueError, match="net=conv64_paper needs 64x64"):
        Conv64Paper((1, 28, 28), 10)
