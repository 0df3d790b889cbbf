"""Latent traversals as an animated GIF: frame t shows, for every latent, the posterior mean of one
image with that latent set to the t-th value of [-limit, limit], decoded (there and back again);
the images come from ``dislab.viz.pictures.traversal_images``."""

from __future__ import annotations

import io

import numpy as np

from dislab.viz.grid import image_grid


def traversal_frames(images: np.ndarray, *, per_row: int = 10) -> np.ndarray:
    """uint8 frames (steps, H', W'[, 3]) from ``traversal_images``' (d, steps, C, H, W): frame t tiles
    every latent's t-th image, ``per_row`` tiles a row."""
    d, steps = images.shape[:2]
    if steps < 2 or per_row < 1:
        raise ValueError(f"steps={steps} (>= 2) and per_row={per_row} (>= 1) out of range")
    imgs = images.swapaxes(0, 1)  # (steps, d, ...)
    rows = -(-d // per_row)
    cols = min(d, per_row)
    pad = np.zeros((steps, rows * cols - d, *imgs.shape[2:]), dtype=imgs.dtype)
    tiles = np.concatenate([imgs, pad], axis=1).reshape(steps, rows, cols, *imgs.shape[2:])
    return np.stack([image_grid(t) for t in tiles])


def traversal_gif(images: np.ndarray, *, per_row: int = 10, duration_ms: int = 120) -> bytes:
    """GIF bytes of ``traversal_images``' output, looping forever, playing the traversal forwards
    then backwards."""
    from PIL import Image

    frames = traversal_frames(images, per_row=per_row)
    seq = [Image.fromarray(f) for f in np.concatenate([frames, frames[-2:0:-1]])]
    buf = io.BytesIO()
    seq[0].save(buf, format="GIF", save_all=True, append_images=seq[1:], duration=duration_ms, loop=0)
    return buf.getvalue()
