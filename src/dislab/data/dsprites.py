"""dSprites: 2D shapes from five independent factors (shape, scale, orientation, posX, posY).

Data set: Matthey, Higgins, Hassabis, Lerchner (2017), "dSprites: Disentanglement testing
Sprites dataset", https://github.com/deepmind/dsprites-dataset. Factor grid and the choice to
drop the constant colour factor follow disentanglement_lib's ``data/ground_truth/dsprites.py``.

Two back ends, one index (row-major over shape x scale x orientation x posX x posY):

* ``DSprites()`` renders procedurally, with no data file. The geometry was calibrated on 160
  real frames (the animation in the data set's repository); it reproduces all of them pixel
  for pixel. Image coordinates: pixel (row i, col j) has its centre at (i, j).
  - sprite centre: col = 15.5 + 32 * posX, row = 15.5 + 32 * posY (posY grows downwards);
  - rotation: counter-clockwise on screen by ``orientation`` radians about the sprite centre;
  - a pixel is on iff its centre lies strictly inside the shape scaled by ``scale``;
  - square: half side 9.598 px; ellipse: semi-axes 12.766 (horizontal) x 7.2123 px;
  - heart: the classic heart curve x = 16 sin^3 t, y = 13 cos t - 5 cos 2t - 2 cos 3t - cos 4t
    (lobes up) as a 150-gon (t = 2 pi k / 150), scaled by (0.6, 0.66225) and raised 1.44 px.
  Sizes are in pixels at scale 1; the frames pin them to within ~0.002 px (square half side in
  (9.5966, 9.5998), heart y-scale in (0.6621, 0.6624)). Each image is rendered in a 28 x 28 window around its centre,
  vectorised over the batch; nothing is precomputed.
* ``DSprites(path)`` loads the official ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` and
  keeps the images bit-packed (1 bit per pixel, ~360 MB), unpacking only requested batches.
"""

from __future__ import annotations

import os
import zipfile
import zlib

import numpy as np

from dislab.data._files import existing, read_npy_header
from dislab.data.ground_truth import GroundTruthData

_CENTRE0, _SPAN = 15.5, 32.0  # sprite centre in pixels: _CENTRE0 + _SPAN * pos
_SQUARE_HALF = 9.598
_ELLIPSE_AXES = (12.766, 7.2123)
_HEART_VERTICES, _HEART_SCALE, _HEART_RAISE = 150, (0.6, 0.66225), 1.44
_WIN = 28  # window side; covers the largest sprite (square corner 13.6 px from the centre)
_FIELDS = ("imgs", "latents_classes", "latents_values")
_CHUNK = 8192  # images streamed per step while loading a file


def _heart_edges() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The heart polygon as (vertex polar angles ascending, edge outward normals, offsets).

    The polygon is star-shaped about the origin, so a point p with polar angle phi is inside
    iff n_e . p < d_e for the edge e whose angular sector holds phi.
    """
    t = 2 * np.pi * np.arange(_HEART_VERTICES) / _HEART_VERTICES
    x = _HEART_SCALE[0] * 16 * np.sin(t) ** 3
    y = _HEART_SCALE[1] * (13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    y = y + _HEART_RAISE
    angle = np.arctan2(y, x)
    order = np.argsort(angle)
    x, y, angle = x[order], y[order], angle[order]
    ex, ey = np.roll(x, -1) - x, np.roll(y, -1) - y  # counter-clockwise edges
    normal = np.stack([ey, -ex], axis=-1)
    return angle, normal, normal[:, 0] * x + normal[:, 1] * y


def _inside(shape: int, cos: np.ndarray, sin: np.ndarray, u: np.ndarray, v: np.ndarray, heart: tuple) -> np.ndarray:
    """Pixels of the windows (m, W, W) inside ``shape``: u (m, 1, W) and v (m, W, 1) are pixel
    offsets from the sprite centre (v up); cos, sin (m, 1, 1) hold cos(theta) / scale and
    sin(theta) / scale, so (x, y) below is the pixel in the upright sprite's frame at scale 1."""
    if shape == 1:  # ellipse: fold the semi-axes into the rotation
        a, b = _ELLIPSE_AXES
        x, y = (cos * u + sin * v) / a, (cos * v - sin * u) / b
        return x * x + y * y < 1
    x, y = cos * u + sin * v, cos * v - sin * u
    if shape == 0:
        return np.maximum(np.abs(x), np.abs(y)) < _SQUARE_HALF
    angle, normal, offset = heart
    edge = np.searchsorted(angle, np.arctan2(y, x), side="right") - 1  # -1 -> wrap-around edge
    return normal[edge, 0] * x + normal[edge, 1] * y < offset[edge]


class DSprites(GroundTruthData):
    """dSprites (Matthey et al. 2017): 3 x 6 x 40 x 32 x 32 = 737,280 binary 64 x 64 images.

    Attributes: ``factor_names``, ``factor_sizes``, ``x_shape`` (1, 64, 64), ``shape_names``
    (square, ellipse, heart) and ``factor_values`` (list of arrays, the published latent values:
    shape 1..3, scale linspace(0.5, 1, 6), orientation linspace(0, 2 pi, 40), posX and posY
    linspace(0, 1, 32)). Observations are deterministic functions of the factors.

    Args:
        path: the official ``.npz`` file; ``None`` renders the images procedurally. The loader
            takes the factor grid from ``latents_classes`` (which must enumerate a full grid in
            row-major order with a single colour), so the official file gives the grid above.
    """

    factor_names = ("shape", "scale", "orientation", "posX", "posY")
    factor_sizes = (3, 6, 40, 32, 32)
    x_shape = (1, 64, 64)
    shape_names = ("square", "ellipse", "heart")

    def __init__(self, path: str | os.PathLike | None = None):
        loaded = None if path is None else _load_official(path)  # checks everything before any state
        self.path, self._bits, self._heart = path, None, _heart_edges()
        self.factor_values = [
            np.arange(1.0, 4.0),
            np.linspace(0.5, 1.0, 6),
            np.linspace(0.0, 2 * np.pi, 40),
            np.linspace(0.0, 1.0, 32),
            np.linspace(0.0, 1.0, 32),
        ]
        if loaded is not None:
            self._bits, self.factor_sizes, self.factor_values = loaded

    def sample_observations_from_factors(self, factors: np.ndarray, rng: np.random.Generator | None = None):
        """Images for ``factors`` (n, 5) int, as float32 (n, 1, 64, 64) in {0, 1}; ``rng`` unused."""
        f = np.asarray(factors, dtype=np.int64)
        if f.ndim != 2 or f.shape[1] != 5:
            raise ValueError(f"factors must have shape (n, 5), got {f.shape}")
        if f.size and ((f < 0).any() or (f >= np.asarray(self.factor_sizes)).any()):
            raise ValueError(f"factors out of range for factor_sizes {self.factor_sizes}")
        if self._bits is not None:
            packed = self._bits[self.factors_to_index(f)]
            return np.unpackbits(packed, axis=1).reshape(len(f), 1, 64, 64).astype(np.float32)
        return self._render(f)

    def _render(self, f: np.ndarray) -> np.ndarray:
        n = len(f)
        order = np.argsort(f[:, 0], kind="stable")  # one contiguous block per shape
        f = f[order]
        scale = self.factor_values[1][f[:, 1]]
        theta = self.factor_values[2][f[:, 2]]
        cx = _CENTRE0 + _SPAN * self.factor_values[3][f[:, 3]]
        cy = _CENTRE0 + _SPAN * self.factor_values[4][f[:, 4]]
        col0, row0 = np.floor(cx) - (_WIN // 2 - 1), np.floor(cy) - (_WIN // 2 - 1)
        step = np.arange(_WIN, dtype=np.float64)
        u = ((col0[:, None] + step) - cx[:, None])[:, None, :]  # (n, 1, W): right of the centre
        v = (cy[:, None] - (row0[:, None] + step))[:, :, None]  # (n, W, 1): above the centre
        cos, sin = (np.cos(theta) / scale)[:, None, None], (np.sin(theta) / scale)[:, None, None]
        mask = np.empty((n, _WIN, _WIN), dtype=bool)
        bounds = np.searchsorted(f[:, 0], np.arange(4))
        for shape in range(3):
            a, b = bounds[shape], bounds[shape + 1]
            if a < b:
                mask[a:b] = _inside(shape, cos[a:b], sin[a:b], u[a:b], v[a:b], self._heart)
        flat = (row0.astype(np.intp)[:, None, None] + np.arange(_WIN)[:, None]) * 64
        flat = flat + (col0.astype(np.intp) + order * 4096)[:, None, None] + np.arange(_WIN)
        out = np.zeros((n, 1, 64, 64), dtype=np.float32)
        out.reshape(-1)[flat.reshape(-1)] = mask.reshape(-1)
        return out


def _load_official(path: str) -> tuple[np.ndarray, tuple[int, ...], list[np.ndarray]]:
    """Read and check an official-format file; return (packed images, factor sizes, values)."""
    p = existing(path, "dsprites: the official dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz")
    path = str(p)
    try:
        npz = np.load(p, allow_pickle=False)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable .npz archive ({_first_line(err)})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: not an .npz archive (a single .npy array)")
    try:
        with npz:
            missing = [k for k in _FIELDS if k not in npz.files]
            if missing:
                raise ValueError(f"{path}: missing field(s) {', '.join(missing)}")
            classes, values = _field(npz, "latents_classes", path), _field(npz, "latents_values", path)
            sizes = _check_grid(path, classes, values)
            with npz.zip.open("imgs.npy") as fp:
                bits = _read_packed(path, fp, len(classes))
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
        raise ValueError(f"{path}: corrupt or truncated .npz archive ({_first_line(err)})") from None
    strides = [int(np.prod(sizes[j + 1 :])) for j in range(len(sizes))]  # row-major
    factor_values = [values[np.arange(s) * st, j + 1] for j, (s, st) in enumerate(zip(sizes, strides, strict=True))]
    return bits, sizes, factor_values


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _field(npz, name: str, path: str) -> np.ndarray:
    try:
        return npz[name]
    except ValueError as err:  # e.g. an object array, refused without pickle
        raise ValueError(f"{path}: field {name} is unreadable ({_first_line(err)})") from None


def _check_grid(path: str, classes: np.ndarray, values: np.ndarray) -> tuple[int, ...]:
    """Factor sizes (colour dropped) if ``latents_classes`` is a full row-major grid."""
    if classes.ndim != 2 or classes.shape[1] != 6 or not np.issubdtype(classes.dtype, np.integer):
        got = f"{classes.dtype} {classes.shape}"
        raise ValueError(f"{path}: latents_classes must be an integer (N, 6) array, got {got}")
    if len(classes) == 0 or classes.min() < 0:
        raise ValueError(f"{path}: latents_classes is empty or negative")
    sizes = tuple(int(s) for s in classes.max(axis=0) + 1)
    if sizes[0] != 1:
        raise ValueError(f"{path}: expected a single colour, latents_classes has {sizes[0]}")
    n = int(np.prod(sizes, dtype=np.int64))
    if n != len(classes) or not np.array_equal(np.ravel_multi_index(tuple(classes.T), sizes), np.arange(n)):
        raise ValueError(f"{path}: latents_classes is not the row-major grid {sizes} (rows missing or out of order)")
    if values.shape != classes.shape or not np.issubdtype(values.dtype, np.floating):
        got = f"{values.dtype} {values.shape}"
        raise ValueError(f"{path}: latents_values must be a float {classes.shape} array, got {got}")
    return sizes[1:]


def _read_packed(path: str, fp, n: int) -> np.ndarray:
    """Stream ``imgs`` (n, 64, 64) uint8 0/1 from an open .npy member into packed bits (n, 512)."""
    try:
        shape, fortran, dtype = read_npy_header(fp)
    except ValueError as err:
        raise ValueError(f"{path}: imgs has an unreadable .npy header ({_first_line(err)})") from None
    if shape != (n, 64, 64) or dtype != np.uint8 or fortran:
        raise ValueError(f"{path}: imgs must be C-order uint8 {(n, 64, 64)}, got {dtype} {shape}")
    bits = np.empty((n, 512), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        m = min(_CHUNK, n - start)
        buf = fp.read(m * 4096)
        if len(buf) != m * 4096:
            raise ValueError(f"{path}: imgs is truncated ({start + len(buf) // 4096} of {n} images)")
        chunk = np.frombuffer(buf, dtype=np.uint8).reshape(m, 4096)
        if chunk.max() > 1:
            raise ValueError(f"{path}: imgs must hold 0/1 pixels, found {chunk.max()}")
        bits[start : start + m] = np.packbits(chunk, axis=1)
    if fp.read(1):  # also makes zipfile verify the member's CRC
        raise ValueError(f"{path}: imgs has trailing data")
    return bits
