"""A tiny ground-truth data set for fast tests: a filled square on a black background.

Factors: posX (8), posY (8), scale (4: side 4, 6, 8, 10 pixels of a 32-pixel canvas, scaled to
the image size, rounded: at size 16, sides 2-5 and offsets 1-8 pixels), intensity (4: 0.4, 0.6,
0.8, 1.0). 1,024 points, so brute-force checks over the whole data set are cheap. Each factor
has a monotonic, separable effect on the image. Both renderers (numpy, and torch on a device)
index the same per-value tables: the images are the same bit for bit.
"""

from __future__ import annotations

import numpy as np

from dislab.data._device import check_device
from dislab.data.ground_truth import GroundTruthData


class Toy(GroundTruthData):
    factor_names = ("posX", "posY", "scale", "intensity")
    factor_sizes = (8, 8, 4, 4)
    paints = True
    source_args = ()  # procedural, standing in for nothing

    def __init__(self, size: int = 64, channels: int = 1, device: str = "auto"):
        if size < 16 or size % 16:
            raise ValueError(f"toy size={size} must be a positive multiple of 16")
        self.x_shape = (channels, size, size)
        self.unit = size / 32
        self.device = check_device(device)
        self._tables = {  # pixels: the square's first column (row) per posX (posY), its side per scale
            "start": np.round((2 + 2 * np.arange(8)) * self.unit).astype(np.int64),
            "side": np.round((4 + 2 * np.arange(4)) * self.unit).astype(np.int64),
            "level": (0.4 + 0.2 * np.arange(4)).astype(np.float32), "grid": np.arange(size)}

    def sample_observations_from_factors(self, factors, rng=None):
        f, t = np.asarray(factors, dtype=np.int64), self._tables
        return self._draw(f, t, t["grid"]).repeat(self.x_shape[0], axis=1)

    def paint(self, factors, params):
        t = self._device_tensors("tables", factors.device, lambda: self._tables)
        return self._draw(factors, t, t["grid"]).expand(-1, self.x_shape[0], -1, -1).contiguous()

    @staticmethod
    def _draw(f, t, grid):
        """One channel (n, 1, s, s) float32; arrays or tensors."""
        x0, y0, side = t["start"][f[:, 0]], t["start"][f[:, 1]], t["side"][f[:, 2]]
        inx = (grid >= x0[:, None]) & (grid < (x0 + side)[:, None])  # (n, W)
        iny = (grid >= y0[:, None]) & (grid < (y0 + side)[:, None])  # (n, H)
        return ((iny[:, :, None] & inx[:, None, :]) * t["level"][f[:, 3]][:, None, None])[:, None]
