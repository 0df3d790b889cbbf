"""Scream-dSprites (Locatello et al. 2019; disentanglement_lib's ``ScreamDSprites``): a dSprites
sprite embedded in a random 64x64 crop of a background picture (disentanglement_lib uses Munch's
"The Scream"). As defined there: the picture is shrunk to fit 350x274 pixels (Pillow's
``thumbnail``, aspect kept); per observation a crop at a uniformly random position (rows in
[0, H-64), columns in [0, W-64)) is mixed with a random colour, (crop + U(0, 1)^3) / 2, and the
crop's colours are inverted (1 - c) where the sprite is.

Factors: those of dSprites (crop position and colour are drawn from ``rng``: an observation is
deterministic given its factors and the generator's state). 3 channels. ``background``: the
picture file (null: the data directory's ``scream.jpg``, placed by ``python -m dislab.data.download scream``;
refused where there is none); ``path``: as for dSprites. On a device the
picture is held there, crop positions and colours are drawn by numpy as here, and the images are
the same bit for bit.
"""

from __future__ import annotations

import numpy as np
import torch

from dislab.data._files import existing
from dislab.data.dsprites import DSprites

THUMBNAIL = (350, 274)  # (width, height), disentanglement_lib's


def load_background(path) -> np.ndarray:
    """The background picture as float32 (H, W, 3) in [0, 1], shrunk to fit ``THUMBNAIL``."""
    from PIL import Image

    p = existing(path, "scream_dsprites: background (a picture, e.g. The Scream)", key="background", fetch="scream")
    try:
        with Image.open(p) as im:
            im = im.convert("RGB")
            im.thumbnail(THUMBNAIL)
            pic = np.asarray(im, dtype=np.float32) / 255
    except (OSError, ValueError, SyntaxError) as e:
        raise ValueError(f"scream_dsprites: {p} is not a readable image ({e})") from None
    if pic.shape[0] <= 64 or pic.shape[1] <= 64:
        raise ValueError(f"scream_dsprites: {p} is {pic.shape[1]}x{pic.shape[0]} after fitting {THUMBNAIL}; "
                         "both sides must exceed 64 pixels")
    return pic


class ScreamDSprites(DSprites):
    x_shape = (3, 64, 64)
    source_args = ("path", "background")  # the picture is part of the data

    def __init__(self, path=None, background=None, **kwargs):
        background = self.from_data_dir("background", background)  # null: the data directory's copy
        pic = load_background(background)  # before anything else: a bad file leaves nothing behind
        super().__init__(path=path, **kwargs)
        self.background = background
        self._picture = pic
        self._chw = np.ascontiguousarray(pic.transpose(2, 0, 1))

    def random_params(self, factors, rng):
        """Crop rows, crop columns and colours: (n, 5)."""
        n, (h, w), (H, W) = len(factors), self.x_shape[1:], self._picture.shape[:2]
        rows, cols = rng.integers(0, H - h, n), rng.integers(0, W - w, n)
        colour = rng.uniform(0.0, 1.0, (n, 3)).astype(np.float32)
        return np.column_stack([rows, cols, colour]).astype(np.float64)

    def sample_observations_from_factors(self, factors, rng):
        sprite = super().sample_observations_from_factors(factors, rng)  # (n, 1, h, w) in {0, 1}
        p = self.random_params(factors, rng)
        n, (h, w) = len(sprite), self.x_shape[1:]
        rows, cols, colour = p[:, 0].astype(np.intp), p[:, 1].astype(np.intp), p[:, 2:].astype(np.float32)
        out = np.empty((n, 3, h, w), dtype=np.float32)
        for i in range(n):  # the crop mixed with the colour
            np.add(self._chw[:, rows[i]:rows[i] + h, cols[i]:cols[i] + w], colour[i, :, None, None], out=out[i])
        out *= np.float32(0.5)
        out *= 1 - 2 * sprite  # 1 - c where the sprite is, c elsewhere
        out += sprite
        return out

    def paint(self, factors, params):
        sprite = super().paint(factors, params)
        pic = self._device_tensors("picture", factors.device, lambda: {"chw": self._chw})["chw"]
        h, w = self.x_shape[1:]
        channel = torch.arange(3, device=pic.device)[:, None, None]  # (3, 1, 1)
        rows = params[:, 0, None, None, None].long() + torch.arange(h, device=pic.device)[:, None]  # (n, 1, h, 1)
        cols = params[:, 1, None, None, None].long() + torch.arange(w, device=pic.device)  # (n, 1, 1, w)
        out = pic[channel, rows, cols] + params[:, 2:].float()[:, :, None, None]  # the crops (n, 3, h, w)
        out *= 0.5
        out *= 1 - 2 * sprite
        return out.add_(sprite)
