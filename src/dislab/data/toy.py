"""A tiny ground-truth data set for fast tests: a filled square on a black background.

Factors: posX (8), posY (8), scale (4: side 4, 6, 8, 10 pixels of a 32-pixel canvas, scaled to
the image size, rounded: at size 16, sides 2-5 and offsets 1-8 pixels), intensity (4: 0.4, 0.6,
0.8, 1.0). 1,024 points, so brute-force checks over the whole data set are cheap. Each factor
has a monotonic, separable effect on the image.
"""

from __future__ import annotations

import numpy as np

from dislab.data.ground_truth import GroundTruthData


class Toy(GroundTruthData):
    factor_names = ("posX", "posY", "scale", "intensity")
    factor_sizes = (8, 8, 4, 4)

    def __init__(self, size: int = 64, channels: int = 1):
        if size < 16 or size % 16:
            raise ValueError(f"toy size={size} must be a positive multiple of 16")
        self.x_shape = (channels, size, size)
        self.unit = size / 32

    def sample_observations_from_factors(self, factors, rng=None):
        f = np.asarray(factors, dtype=np.int64)
        s = self.x_shape[1]
        side = np.round((4 + 2 * f[:, 2]) * self.unit).astype(np.int64)
        x0 = np.round((2 + 2 * f[:, 0]) * self.unit).astype(np.int64)
        y0 = np.round((2 + 2 * f[:, 1]) * self.unit).astype(np.int64)
        grid = np.arange(s)
        inx = (grid >= x0[:, None]) & (grid < (x0 + side)[:, None])  # (n, W)
        iny = (grid >= y0[:, None]) & (grid < (y0 + side)[:, None])  # (n, H)
        level = (0.4 + 0.2 * f[:, 3]).astype(np.float32)
        img = (iny[:, :, None] & inx[:, None, :]) * level[:, None, None]
        return np.repeat(img[:, None], self.x_shape[0], axis=1).astype(np.float32)
