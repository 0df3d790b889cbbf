"""The pictures of a run, from a model's numpy ``encode``/``decode`` and a few images."""

from __future__ import annotations

import numpy as np

from dislab.viz.grid import image_grid


def traversals(model, x: np.ndarray, limit: float = 2.0, steps: int = 10) -> np.ndarray:
    """One row per latent: the posterior mean of ``x[0]`` with that latent swept over
    [-limit, limit] (the prior's +-2 sd), decoded."""
    mu = model.encode(x[:1])[0][0]
    d = mu.shape[0]
    z = np.repeat(mu[None, None], d * steps, axis=0).reshape(d, steps, d).copy()
    for i in range(d):
        z[i, :, i] = np.linspace(-limit, limit, steps)
    imgs = model.decode(z.reshape(d * steps, d))
    return image_grid(imgs.reshape(d, steps, *imgs.shape[1:]))


def reconstructions(model, x: np.ndarray) -> np.ndarray:
    """Row 1: inputs; row 2: decoded posterior means."""
    rec = model.decode(model.encode(x)[0])
    return image_grid(np.stack([x, rec]))
