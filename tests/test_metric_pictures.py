"""Metric pictures: the MI heat map, KL bars and the traversal GIF (arrays in, arrays/bytes out)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from dislab.data.toy import Toy
from dislab.io import to_png
from dislab.metrics._sampling import discrete_entropy
from dislab.metrics.mig import mutual_info_matrix
from dislab.viz.metric_pictures import kl_bars, mutual_info_heatmap
from dislab.viz.pictures import traversal_images
from dislab.viz.traversal_gif import traversal_frames, traversal_gif


def test_heatmap_and_bars_are_rgb_pictures():
    f = Toy().sample_factors(2000, np.random.default_rng(0))
    codes = np.c_[f[:, ::-1], np.random.default_rng(1).normal(size=2000)].astype(float)
    mi = mutual_info_matrix(codes, f)
    img = mutual_info_heatmap(mi, Toy.factor_names, factor_entropy=discrete_entropy(f))
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) > 100
    assert img.std() > 10  # not blank
    raw = mutual_info_heatmap(mi, Toy.factor_names)
    assert raw.shape[2] == 3 and not np.array_equal(raw, img)
    bars = kl_bars(np.array([0.5, 0.001, 2.0]))
    assert bars.dtype == np.uint8 and bars.shape[2] == 3
    png = to_png(bars)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and np.array_equal(np.asarray(Image.open(io.BytesIO(png))), bars)


class LinearModel:
    """A stand-in model: the image's mean as latent 0, a fixed picture per latent to decode."""

    def __init__(self, d=3):
        self.d = d
        self.basis = np.random.default_rng(0).random((d, 1, 16, 16)).astype(np.float32)

    def encode(self, x):
        mu = np.zeros((len(x), self.d))
        mu[:, 0] = x.mean((1, 2, 3))
        return mu, np.zeros_like(mu)

    def decode(self, z):
        return 1 / (1 + np.exp(-np.tensordot(z, self.basis, axes=1)))


def test_traversal_gif_plays_there_and_back():
    model, x = LinearModel(), np.zeros((2, 1, 16, 16), np.float32)
    images = traversal_images(model, x, steps=5)
    frames = traversal_frames(images, per_row=2)
    assert frames.shape[0] == 5 and frames.dtype == np.uint8
    assert not np.array_equal(frames[0], frames[-1])
    gif = Image.open(io.BytesIO(traversal_gif(images, per_row=2)))
    assert gif.format == "GIF" and gif.n_frames == 8 and gif.info.get("loop") == 0
