"""Cars3D (Reed et al. 2015, "Deep Visual Analogy-Making", data from http://www.scottreed.info/),
as disentanglement_lib's ``cars3d.py`` uses it: 183 car models, each rendered from 24 azimuths at 4
elevations, resized to 64x64 RGB (Pillow, Lanczos).

Factors (row-major in this order): elevation 4, azimuth 24, object_type 183; 17,568 images.

``path``: the folder of the published ``.mat`` files (MATLAB v5, one per car, e.g. ``car_001_mesh.mat``; null:
the data directory's ``cars3d/``, from ``python -m dislab.data.download cars3d``), each holding ``im``: uint8
(H, W, 3, 24 azimuths, 4 elevations). The files are taken in sorted name order as object types 0..182
(disentanglement_lib takes the folder's listing order). Every file is checked before anything is kept; the
resized images (216 MB) are held in memory.
"""

from __future__ import annotations

import numpy as np

from dislab.data._device import check_device
from dislab.data._files import HeldImages, existing, resize_uint8, to_float

NAMES = ("elevation", "azimuth", "object_type")
SIZES = (4, 24, 183)


def load_car(path) -> np.ndarray:
    """The ``im`` array of one car file as (elevation, azimuth, 64, 64, 3) uint8."""
    import scipy.io

    try:
        im = scipy.io.loadmat(path, variable_names=["im"]).get("im")
    except (ValueError, TypeError, OSError, NotImplementedError, EOFError) as e:
        raise ValueError(f"cars3d: {path} is not a readable MATLAB (v5) file, truncated or corrupt ({e})") from None
    if im is None:
        raise ValueError(f"cars3d: {path} holds no array 'im'")
    if im.dtype != np.uint8 or im.ndim != 5 or im.shape[2:] != (3, SIZES[1], SIZES[0]):
        raise ValueError(f"cars3d: {path}: 'im' is {im.dtype} {im.shape}, expected uint8 (H, W, 3, 24, 4)")
    views = im.transpose(4, 3, 0, 1, 2).reshape(-1, *im.shape[:2], 3)  # (elevation * azimuth, H, W, 3)
    return resize_uint8(views).reshape(SIZES[0], SIZES[1], 64, 64, 3)


class Cars3D(HeldImages):
    factor_names = NAMES
    factor_sizes = SIZES
    x_shape = (3, 64, 64)

    def __init__(self, path=None, device: str = "auto"):
        self.device = check_device(device)
        folder = existing(self.from_data_dir("path", path), "cars3d (the folder of the 183 official car .mat files)",
                          directory=True, fetch="cars3d")
        files = self.files_in(folder)
        if len(files) != SIZES[2]:
            raise ValueError(f"cars3d: {folder} holds {len(files)} .mat files; the data set has {SIZES[2]} cars")
        images = np.empty((*SIZES, 64, 64, 3), dtype=np.uint8)  # row-major: elevation, azimuth, object
        for i, f in enumerate(files):
            images[:, :, i] = load_car(f)
        self.path, self.images = folder, images.reshape(-1, 64, 64, 3)
        self.factor_values = (np.arange(4), np.arange(0, 360, 15), np.arange(SIZES[2]))

    @classmethod
    def files_in(cls, folder):
        """The folder's .mat files, in name order (object types 0..182)."""
        return sorted(p for p in folder.iterdir() if p.suffix == ".mat" and p.is_file())

    def sample_observations_from_factors(self, factors, rng=None):
        return to_float(self.images[self.factors_to_index(factors)])
