"""dSprites: Matthey et al. 2017, "dSprites: Disentanglement testing Sprites dataset"
(github.com/deepmind/dsprites-dataset), as disentanglement_lib's ``dsprites.py`` serves it.

Factors: shape 3 (square, ellipse, heart), scale 6 (linspace(0.5, 1, 6)), orientation 40
(linspace(0, 2 pi, 40): 0 and 2 pi are both on the grid, as in the published file), posX 32 and
posY 32 (linspace(0, 1, 32)); 64x64 binary images. The published file's colour (always white)
is a constant, not a factor. Index <-> factors is row-major over the factors in that order,
the order of the published file.

Procedural rendering, calibrated on real frames of the data set (shared/data/
dsprites_reference_frames.npz; tests/test_dsprites.py checks the fit). In image coordinates where
pixel (i, j) covers [j, j+1) x [i, i+1), the sprite's centre is (16 + 32 posX, 16 + 32 posY); a pixel
is on when its centre lies inside the sprite, which is scaled by ``scale`` and rotated by the
orientation (counter-clockwise on screen) about its centre. At scale 1: the square's side is 19.2
pixels (20 pixels wide when upright, 368 pixels at 45 degrees); the ellipse's semi-axes are 12.55
and 7.25; the heart is a diamond of half-diagonal 8.4 centred 0.2 below the sprite centre with two
disks of radius 5.4 on the midpoints of its upper edges. Square and ellipse reproduce the real
frames pixel for pixel; rotated hearts agree to IoU 0.91-0.97.

``path``: the official ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` (fields ``imgs`` uint8
(737280, 64, 64), ``latents_classes`` (737280, 6), ``latents_values`` (737280, 6)) served instead of
the renderer. The images are streamed out of the archive and kept bit-packed (1 bit per pixel,
360 MB), never as the 3-GB array.
"""

from __future__ import annotations

import zipfile

import numpy as np

from dislab.data.ground_truth import GroundTruthData

SHAPES = ("square", "ellipse", "heart")
SQUARE_SIDE, ELLIPSE_AXES, HEART = 19.2, (12.55, 7.25), (8.4, 0.2, 5.4)  # pixels at scale 1
WINDOW = 32  # every sprite fits in a 32x32 window around its centre


class DSprites(GroundTruthData):
    factor_names = ("shape", "scale", "orientation", "posX", "posY")
    factor_sizes = (3, 6, 40, 32, 32)
    x_shape = (1, 64, 64)

    def __init__(self, path=None):
        self.factor_values = [np.arange(3), np.linspace(0.5, 1, 6), np.linspace(0, 2 * np.pi, 40),
                              np.linspace(0, 1, 32), np.linspace(0, 1, 32)]
        self.path, self._packed = path, None
        if path is not None:
            self._packed = self._load(path)

    # -- procedural -----------------------------------------------------------------------
    def sample_observations_from_factors(self, factors, rng=None) -> np.ndarray:
        f = np.asarray(factors, dtype=np.int64)
        if self._packed is not None:
            rows = np.unpackbits(self._packed[self.factors_to_index(f)], axis=1, count=64 * 64)
            return rows.reshape(len(f), 1, 64, 64).astype(np.float32)
        n = len(f)
        scale = self.factor_values[1][f[:, 1]]
        theta = self.factor_values[2][f[:, 2]]
        cx, cy = 16 + 32 * self.factor_values[3][f[:, 3]], 16 + 32 * self.factor_values[4][f[:, 4]]
        ox, oy = np.floor(cx).astype(np.int64) - WINDOW // 2, np.floor(cy).astype(np.int64) - WINDOW // 2
        grid = np.arange(WINDOW) + 0.5
        x = (ox - cx)[:, None, None] + grid[None, None, :]  # pixel centres relative to the sprite centre
        y = (oy - cy)[:, None, None] + grid[None, :, None]
        c, s = (np.cos(theta) / scale)[:, None, None], (np.sin(theta) / scale)[:, None, None]
        u, v = c * x - s * y, s * x + c * y  # into the sprite's frame at scale 1
        mask = np.empty((n, WINDOW, WINDOW), dtype=bool)
        for shape in range(3):
            k = f[:, 0] == shape
            if k.any():
                mask[k] = _inside(shape, u[k], v[k])
        out = np.zeros((n, 1, 64, 64), dtype=np.float32)
        rows = oy[:, None, None] + np.arange(WINDOW)[None, :, None]
        cols = ox[:, None, None] + np.arange(WINDOW)[None, None, :]
        out[np.arange(n)[:, None, None], 0, rows, cols] = mask
        return out

    # -- the published file ---------------------------------------------------------------
    def _load(self, path):
        from pathlib import Path

        p = Path(str(path)).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"dSprites file {p} does not exist (expected the official "
                                    f"dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz)")
        try:
            with zipfile.ZipFile(p) as z:
                names = set(z.namelist())
                for field in ("imgs", "latents_classes"):
                    if f"{field}.npy" not in names:
                        raise ValueError(f"{p} has no field '{field}' (fields: {sorted(n[:-4] for n in names)})")
                classes = _read_npy(z, "latents_classes", p)
                packed = _read_images_packed(z, p)
        except (zipfile.BadZipFile, EOFError, OSError, zlib_error()) as e:
            raise ValueError(f"{p} is not a readable .npz file ({type(e).__name__}: {e})") from None
        if classes.ndim != 2 or classes.shape[1] != 6 or not np.issubdtype(classes.dtype, np.integer):
            raise ValueError(f"{p}: latents_classes has shape {classes.shape} and dtype {classes.dtype}; "
                             f"expected integers of shape (n, 6)")
        if len(classes) != len(packed):
            raise ValueError(f"{p}: {len(packed)} images but {len(classes)} rows of latents_classes")
        sizes = tuple(int(m) + 1 for m in classes.max(0))
        if sizes[0] != 1 or len(classes) != np.prod(sizes) or not np.array_equal(
                classes, np.stack(np.unravel_index(np.arange(len(classes)), sizes), axis=1)):
            raise ValueError(f"{p}: latents_classes is not the row-major grid colour x shape x scale x "
                             f"orientation x posX x posY of the official file")
        if sizes[1:] != self.factor_sizes:  # a smaller grid in the official format (e.g. a test file)
            self.factor_sizes = sizes[1:]
            self.factor_values = [v[np.linspace(0, len(v) - 1, k).round().astype(int)]
                                  for v, k in zip(self.factor_values, sizes[1:], strict=True)]
        return packed


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    if shape == 0:
        h = SQUARE_SIDE / 2
        return (np.abs(u) <= h) & (np.abs(v) <= h)
    if shape == 1:
        a, b = ELLIPSE_AXES
        return (u / a) ** 2 + (v / b) ** 2 <= 1
    h, yd, r = HEART
    au, dv = np.abs(u), v - yd
    return (au + np.abs(dv) <= h) | ((au - h / 2) ** 2 + (dv + h / 2) ** 2 <= r * r)


def zlib_error():
    import zlib

    return zlib.error


def _header(f, field, p):
    fmt = np.lib.format
    version = fmt.read_magic(f)
    read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, fortran, dtype = read(f)
    if dtype.hasobject:
        raise ValueError(f"{p}: field '{field}' holds Python objects; refusing to unpickle")
    return shape, fortran, dtype


def _read_npy(z, field, p) -> np.ndarray:
    with z.open(f"{field}.npy") as f:
        shape, fortran, dtype = _header(f, field, p)
        data = f.read()
    n = int(np.prod(shape)) * dtype.itemsize
    if len(data) != n:
        raise ValueError(f"{p}: field '{field}' is truncated ({len(data)} of {n} bytes)")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def _read_images_packed(z, p, chunk: int = 16384) -> np.ndarray:
    """Stream ``imgs`` out of the archive in chunks, keeping 1 bit per pixel."""
    with z.open("imgs.npy") as f:
        shape, fortran, dtype = _header(f, "imgs", p)
        if len(shape) != 3 or shape[1:] != (64, 64) or dtype != np.uint8 or fortran:
            raise ValueError(f"{p}: imgs has shape {shape} and dtype {dtype}; expected uint8 (n, 64, 64)")
        packed = np.empty((shape[0], 64 * 64 // 8), dtype=np.uint8)
        for s in range(0, shape[0], chunk):
            k = min(chunk, shape[0] - s)
            buf = f.read(k * 4096)
            if len(buf) != k * 4096:
                raise ValueError(f"{p}: imgs is truncated (image {s + len(buf) // 4096} of {shape[0]})")
            packed[s:s + k] = np.packbits(np.frombuffer(buf, np.uint8).reshape(k, 4096) > 0, axis=1)
    return packed
