"""Color-dSprites (Locatello et al. 2019, "Challenging Common Assumptions in the Unsupervised
Learning of Disentangled Representations"; disentanglement_lib's ``ColorDSprites``): dSprites with
the sprite tinted, per observation, by a random colour drawn uniformly from [0.5, 1]^3, on black.

Factors: those of dSprites (the colour is not a factor: it is noise drawn from ``rng``, so an
observation is deterministic given its factors and the generator's state). 3 channels.
``path``: as for dSprites (the official npz, or null for the procedural sprites). On a device the
colours are drawn by numpy as here and the images are the same bit for bit.
"""

from __future__ import annotations

import numpy as np

from dislab.data.dsprites import DSprites


class ColorDSprites(DSprites):
    x_shape = (3, 64, 64)

    def random_params(self, factors, rng):
        """The colours (n, 3), float32 values."""
        return rng.uniform(0.5, 1.0, (len(factors), 3)).astype(np.float32).astype(np.float64)

    def sample_observations_from_factors(self, factors, rng):
        sprite = super().sample_observations_from_factors(factors, rng)  # (n, 1, H, W) in {0, 1}
        colour = self.random_params(factors, rng).astype(np.float32)
        return sprite * colour[:, :, None, None]

    def paint(self, factors, params):
        return super().paint(factors, params) * params.float()[:, :, None, None]
