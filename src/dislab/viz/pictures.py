"""The pictures of a run, from a model's numpy ``encode``/``decode`` and a few images."""

from __future__ import annotations

import numpy as np

from dislab.viz.grid import image_grid


def traversal_images(model, x: np.ndarray, limit: float = 2.0, steps: int = 10) -> np.ndarray:
    """Images (d, steps, C, H, W): for latent i, the posterior mean of ``x[0]`` with latent i swept
    over [-limit, limit] (the prior's +-2 sd), decoded in one call. ``image_grid`` of it is the
    traversal picture (one row per latent); ``traversal_gif`` plays it."""
    mu = np.asarray(model.encode(x[:1])[0])[0]
    d = mu.shape[0]
    z = np.repeat(mu[None, None], d * steps, axis=0).reshape(d, steps, d).copy()
    for i in range(d):
        z[i, :, i] = np.linspace(-limit, limit, steps)
    imgs = np.asarray(model.decode(z.reshape(d * steps, d)))
    return imgs.reshape(d, steps, *imgs.shape[1:])


def reconstructions(model, x: np.ndarray) -> np.ndarray:
    """Row 1: inputs; row 2: decoded posterior means."""
    rec = model.decode(model.encode(x)[0])
    return image_grid(np.stack([x, rec]))
