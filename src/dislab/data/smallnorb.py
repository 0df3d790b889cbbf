"""smallNORB (LeCun, Huang & Bottou 2004, https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/), as
disentanglement_lib's ``norb.py`` uses it: both halves (training and testing) pooled, the first
camera's 96x96 image of each pair resized to 64x64 (Pillow, Lanczos), greyscale.

Factors (row-major in this order): category 5, elevation 9, azimuth 18 (the file's 0, 2, ..., 34
halved), lighting 6. The instance (10 per category, 5 in each half) is not a factor: each
observation draws one uniformly from ``rng`` among the instances the files hold for that point.

``path`` (null: the data directory's ``smallnorb/``, from ``python -m dislab.data.download smallnorb``):
the folder holding the six files ``smallnorb-5x46789x9x18x6x2x96x96-training-{dat,cat,
info}.mat`` and ``smallnorb-5x01235x9x18x6x2x96x96-testing-{dat,cat,info}.mat`` (uncompressed).
Their format, per the data set's page: a little-endian int32 magic number naming the element type
(0x1E3D4C55 bytes, 0x1E3D4C54 int32), an int32 number of dimensions ``ndim``, ``max(ndim, 3)``
int32 sizes, then the elements. ``dat`` is (N, 2, H, W) uint8, ``cat`` (N,) int32, ``info`` (N, 4)
int32 (instance, elevation, azimuth, lighting). Every file is checked (magic, sizes, length, value
ranges, every factor combination present) before anything is kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dislab.data._device import check_device
from dislab.data._files import HeldImages, existing, resize_uint8, to_float

NAMES = ("category", "elevation", "azimuth", "lighting")
SIZES = (5, 9, 18, 6)
CHUNKS = ("5x46789x9x18x6x2x96x96-training", "5x01235x9x18x6x2x96x96-testing")
MAGIC = {0x1E3D4C55: np.uint8, 0x1E3D4C54: np.int32, 0x1E3D4C51: np.float32, 0x1E3D4C53: np.float64,
         0x1E3D4C56: np.int16}


def read_matrix(path: Path, dtype) -> np.ndarray:
    """A smallNORB binary matrix, memory-mapped; checks its magic number, header and length."""
    size = path.stat().st_size
    head = np.fromfile(path, dtype="<i4", count=5) if size >= 20 else np.zeros(0, "<i4")
    if len(head) < 5:
        raise ValueError(f"smallnorb: {path} is too short for a smallNORB header ({size} bytes)")
    magic, ndim = int(head[0]), int(head[1])
    if MAGIC.get(magic) is not dtype:
        raise ValueError(f"smallnorb: {path}: magic number {magic:#x} is not the one of a {np.dtype(dtype)} matrix")
    if not 1 <= ndim <= 8:
        raise ValueError(f"smallnorb: {path}: implausible number of dimensions {ndim}")
    offset = 8 + 4 * max(ndim, 3)
    dims = tuple(int(d) for d in np.fromfile(path, dtype="<i4", count=max(ndim, 3), offset=8)[:ndim])
    if min(dims, default=0) < 1:
        raise ValueError(f"smallnorb: {path}: bad sizes {dims}")
    need = offset + int(np.prod(dims, dtype=np.int64)) * np.dtype(dtype).itemsize
    if size != need:
        raise ValueError(f"smallnorb: {path} is {size} bytes; its header {dims} says {need} (truncated or corrupt)")
    return np.memmap(path, dtype=np.dtype(dtype).newbyteorder("<"), mode="r", offset=offset, shape=dims)


class SmallNORB(HeldImages):
    factor_names = NAMES
    factor_sizes = SIZES
    x_shape = (1, 64, 64)

    def __init__(self, path=None, block: int = 2048, device: str = "auto"):
        self.device = check_device(device)
        folder = existing(self.from_data_dir("path", path), "smallnorb (the folder of the six official "
                          "smallnorb-*.mat files)", directory=True, fetch="smallnorb")
        images, feats = [], []
        files = self.files_in(folder)  # dat, cat, info of each half
        for i, chunk in enumerate(CHUNKS):
            dat, cat, info = (read_matrix(existing(f, "smallnorb"), dtype)
                              for f, dtype in zip(files[3 * i:3 * i + 3], (np.uint8, np.int32, np.int32), strict=True))
            n = dat.shape[0]
            if dat.ndim != 4 or dat.shape[1] != 2 or cat.shape != (n,) or info.shape != (n, 4):
                raise ValueError(f"smallnorb: {folder}: {chunk} files have shapes dat {dat.shape}, cat {cat.shape}, "
                                 f"info {info.shape}; expected (N, 2, H, W), (N,), (N, 4)")
            f = np.column_stack([cat, info]).astype(np.int64)  # category, instance, elevation, azimuth, lighting
            if n == 0 or (f.min(0) < 0).any() or (f.max(0) > [4, 9, 8, 34, 5]).any() or (f[:, 3] % 2).any():
                raise ValueError(f"smallnorb: {folder}: {chunk} holds values outside the published ranges "
                                 f"(category 0-4, instance 0-9, elevation 0-8, azimuth 0-34 even, lighting 0-5)")
            feats.append(f)
            images.append(np.concatenate([resize_uint8(dat[s:s + block, 0]) for s in range(0, n, block)]))
        feats, images = np.concatenate(feats), np.concatenate(images)
        point = np.ravel_multi_index((feats[:, 0], feats[:, 2], feats[:, 3] // 2, feats[:, 4]), SIZES)
        order = np.lexsort((feats[:, 1], point))
        counts = np.bincount(point, minlength=int(np.prod(SIZES)))
        if (counts == 0).any():
            missing = dict(zip(NAMES, map(int, np.unravel_index(int(np.argmin(counts)), SIZES)), strict=True))
            raise ValueError(f"smallnorb: {folder}: the files do not cover the factor grid "
                             f"({(counts == 0).sum()} points missing, e.g. {missing})")
        self.path, self.images = folder, images[order]
        self.instances = feats[order, 1]
        self.counts, self.starts = counts, np.r_[0, np.cumsum(counts)[:-1]]
        self.factor_values = (np.arange(5), np.arange(30, 75, 5), np.arange(0, 360, 20), np.arange(6))  # degrees

    @classmethod
    def files_in(cls, folder):
        """The six files, per half: dat, cat, info."""
        return [folder / f"smallnorb-{chunk}-{kind}.mat" for chunk in CHUNKS for kind in ("dat", "cat", "info")]

    def random_params(self, factors, rng):
        """Which of the point's instances (n, 1)."""
        pick = (rng.random(len(factors)) * self.counts[self.factors_to_index(factors)]).astype(np.int64)
        return pick[:, None].astype(np.float64)

    def sample_observations_from_factors(self, factors, rng):
        pick = self.random_params(factors, rng)[:, 0].astype(np.int64)
        return to_float(self.images[self.starts[self.factors_to_index(factors)] + pick])

    def _rows(self, factors, params):
        starts = self._device_tensors("starts", factors.device, lambda: {"s": self.starts})["s"]
        return starts[self._device_index(factors)] + params[:, 0].long()
