"""Tile a (rows, cols, C, H, W) array of images in [0, 1] into one uint8 picture."""

from __future__ import annotations

import numpy as np


def image_grid(images: np.ndarray, pad: int = 2, pad_value: float = 0.5) -> np.ndarray:
    """Returns uint8 (H', W') for one channel or (H', W', 3) for three."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 5 or images.shape[2] not in (1, 3):
        raise ValueError(f"image_grid needs (rows, cols, 1|3, H, W), got {images.shape}")
    r, c, ch, h, w = images.shape
    out = np.full((ch, r * (h + pad) + pad, c * (w + pad) + pad), pad_value, dtype=np.float32)
    for i in range(r):
        for j in range(c):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            out[:, y:y + h, x:x + w] = images[i, j]
    out = np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8)
    return out[0] if ch == 1 else out.transpose(1, 2, 0)
