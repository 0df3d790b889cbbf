"""Latent traversals as an animated GIF: frame t shows, for every latent, the posterior mean of one
image with that latent set to the t-th value of [-limit, limit], decoded (there and back again)."""

from __future__ import annotations

import io

import numpy as np

from dislab.viz.grid import image_grid


def traversal_frames(model, x: np.ndarray, *, limit: float = 2.0, steps: int = 10, per_row: int = 10) -> np.ndarray:
    """uint8 frames (steps, H', W'[, 3]); one tile per latent, ``per_row`` tiles a row. Uses the
    model's numpy ``encode`` (first image of ``x``) and ``decode``, one decode call in all."""
    if steps < 2 or per_row < 1:
        raise ValueError(f"steps={steps} (>= 2) and per_row={per_row} (>= 1) out of range")
    mu = np.asarray(model.encode(x[:1])[0])[0]
    d = mu.shape[0]
    z = np.repeat(mu[None, None], steps * d, axis=0).reshape(steps, d, d).copy()
    values = np.linspace(-limit, limit, steps)
    for i in range(d):
        z[:, i, i] = values
    imgs = np.asarray(model.decode(z.reshape(steps * d, d))).reshape(steps, d, *np.shape(x)[1:])
    rows = -(-d // per_row)
    cols = min(d, per_row)
    pad = np.zeros((steps, rows * cols - d, *imgs.shape[2:]), dtype=imgs.dtype)
    tiles = np.concatenate([imgs, pad], axis=1).reshape(steps, rows, cols, *imgs.shape[2:])
    return np.stack([image_grid(t) for t in tiles])


def traversal_gif(model, x: np.ndarray, *, limit: float = 2.0, steps: int = 10, per_row: int = 10,
                  duration_ms: int = 120) -> bytes:
    """GIF bytes, looping forever, playing the traversal forwards then backwards."""
    from PIL import Image

    frames = traversal_frames(model, x, limit=limit, steps=steps, per_row=per_row)
    seq = [Image.fromarray(f) for f in np.concatenate([frames, frames[-2:0:-1]])]
    buf = io.BytesIO()
    seq[0].save(buf, format="GIF", save_all=True, append_images=seq[1:], duration=duration_ms, loop=0)
    return buf.getvalue()
