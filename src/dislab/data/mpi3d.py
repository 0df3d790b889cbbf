"""MPI3D (Gondal et al. 2019, "On the Transfer of Inductive Bias from Simulation to the Real World:
a New Disentanglement Dataset", https://github.com/rr-learning/disentanglement_dataset): a robot
arm holding an object, in three renditions of the same factor grid: ``toy`` (simple renders),
``realistic`` (realistic renders) and ``real`` (camera images).

Factors (row-major in this order, the order of the published files): object_color 6, object_shape
6, object_size 2, camera_height 3, background_color 3, horizontal_axis 40, vertical_axis 40;
1,036,800 images. (disentanglement_lib's loader once listed 4 colours and 4 shapes; the published
files hold 6 of each.)

``path``: the official ``mpi3d_<variant>.npz`` (``images`` uint8 (1036800, 64, 64, 3)) or a ``.npy`` of that
array; null: the data directory's copy (``python -m dislab.data.download mpi3d_<variant>``), refused in one
line giving that command where there is none. The published ``.npz`` files are stored uncompressed, so the
array is memory-mapped inside the zip and never read whole; a compressed ``.npz`` is read into memory only if
it fits ``max_memory_gb``, otherwise it is refused with a one-line error. ``factor_sizes`` may name a smaller
grid for a file that holds one (tests); the file's length must match the grid.
"""

from __future__ import annotations

import numpy as np

from dislab.data._device import check_device
from dislab.data._files import HeldImages, existing, npz_member, read_rows, to_float

NAMES = ("object_color", "object_shape", "object_size", "camera_height", "background_color",
         "horizontal_axis", "vertical_axis")
SIZES = (6, 6, 2, 3, 3, 40, 40)
VARIANTS = ("toy", "realistic", "real")


class MPI3D(HeldImages):
    factor_names = NAMES
    factor_sizes = SIZES
    x_shape = (3, 64, 64)

    def __init__(self, path=None, variant: str = "toy", max_memory_gb: float = 4.0, factor_sizes=None,
                 device: str = "auto"):
        self.device = check_device(device)
        if variant not in VARIANTS:
            raise ValueError(f"mpi3d: variant={variant!r} is not one of {', '.join(VARIANTS)}")
        what = f"mpi3d ({variant}; the official mpi3d_{variant}.npz)"
        sizes = SIZES if factor_sizes is None else tuple(int(s) for s in factor_sizes)
        if len(sizes) != len(NAMES) or min(sizes) < 1:
            raise ValueError(f"mpi3d: factor_sizes={list(sizes)} must be {len(NAMES)} positive sizes")
        p = existing(self.from_data_dir("path", path, variant=variant), what, fetch=f"mpi3d_{variant}")
        images = npz_member(p, "images", max_bytes=int(max_memory_gb * 2**30), what=what)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (64, 64, 3):
            raise ValueError(f"mpi3d: {p}: 'images' is {images.dtype} {images.shape}, expected uint8 (N, 64, 64, 3)")
        if len(images) != int(np.prod(sizes)):
            raise ValueError(f"mpi3d: {p} holds {len(images)} images; the factor grid "
                             f"{'x'.join(map(str, sizes))} needs {int(np.prod(sizes))}")
        self.path, self.variant, self.factor_sizes, self.images = p, variant, sizes, images
        self.factor_values = tuple(np.arange(s) for s in sizes)

    def sample_observations_from_factors(self, factors, rng=None):
        return to_float(read_rows(self.images, self.factors_to_index(factors)))
