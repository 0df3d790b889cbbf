"""Noisy-dSprites (Locatello et al. 2019; disentanglement_lib's ``NoisyDSprites``): a white dSprites
sprite on a background of uniform noise, min(sprite + U(0, 1) per pixel and channel, 1).

Factors: those of dSprites (the noise is drawn from ``rng``: an observation is deterministic given
its factors and the generator's state). 3 channels. ``path``: as for dSprites.

On a device (``paint``) the sprite is the same bit for bit, but the noise does not come from numpy's
generator (12,288 numbers an image would cross the bus): it is ``dislab.data._device.uniform``,
U[0, 1) on the same float32 grid, from two keys per image taken from the generator's state, which
then moves on as numpy's draw would move it. So the factors (and every later draw) are the numpy
renderer's; the noise has the same distribution and differs in value; and it is the same on every
device.
"""

from __future__ import annotations

import numpy as np

from dislab.data._device import noise_keys, uniform
from dislab.data.dsprites import DSprites


class NoisyDSprites(DSprites):
    x_shape = (3, 64, 64)

    def sample_observations_from_factors(self, factors, rng):
        sprite = super().sample_observations_from_factors(factors, rng)  # (n, 1, H, W) in {0, 1}
        out = rng.random((len(sprite), 3, *sprite.shape[2:]), dtype=np.float32)  # the noise
        out += sprite
        return np.minimum(out, np.float32(1), out=out)

    def random_params(self, factors, rng):
        """Noise keys (n, 2), taken as numpy's noise would be drawn."""
        return noise_keys(rng, len(factors), len(factors) * int(np.prod(self.x_shape))).astype(np.float64)

    def paint(self, factors, params):
        out = uniform(params, self.x_shape) + super().paint(factors, params)
        return out.clamp_(max=1)
