"""Noisy-dSprites (Locatello et al. 2019; disentanglement_lib's ``NoisyDSprites``): a white dSprites
sprite on a background of uniform noise, min(sprite + U(0, 1) per pixel and channel, 1).

Factors: those of dSprites (the noise is drawn from ``rng``: an observation is deterministic given
its factors and the generator's state). 3 channels. ``path``: as for dSprites.
"""

from __future__ import annotations

import numpy as np

from dislab.data.dsprites import DSprites


class NoisyDSprites(DSprites):
    x_shape = (3, 64, 64)

    def sample_observations_from_factors(self, factors, rng):
        sprite = super().sample_observations_from_factors(factors, rng)  # (n, 1, H, W) in {0, 1}
        out = rng.random((len(sprite), 3, *sprite.shape[2:]), dtype=np.float32)  # the noise
        out += sprite
        return np.minimum(out, np.float32(1), out=out)
