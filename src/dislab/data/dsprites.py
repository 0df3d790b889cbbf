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
  (9.5966, 9.5998), heart y-scale in (0.6621, 0.6624)). Each image is rendered in a 28 x 28 window
  around its centre, vectorised over the batch, from small tables per factor value (``_geometry``).
  ``paint`` renders the same images with torch on a device, bit for bit (float64 arithmetic: in
  float32 pixel centres 4e-8 (relative) from an edge would flip).
* ``DSprites(path)`` loads the official ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` and
  keeps the images bit-packed (1 bit per pixel, ~360 MB), unpacking only requested batches; on a
  GPU (``paint``) the packed images are held on the device and unpacked there.
"""

from __future__ import annotations

import os
import zipfile
import zlib

import numpy as np
import torch

from dislab.data._device import check_device
from dislab.data._files import existing, read_npy_header
from dislab.data.ground_truth import GroundTruthData

_CENTRE0, _SPAN = 15.5, 32.0  # sprite centre in pixels: _CENTRE0 + _SPAN * pos
_SQUARE_HALF = 9.598
_ELLIPSE_AXES = (12.766, 7.2123)
_HEART_VERTICES, _HEART_SCALE, _HEART_RAISE = 150, (0.6, 0.66225), 1.44
_WIN = 28  # window side; covers the largest sprite (square corner 13.6 px from the centre)
_FIELDS = ("imgs", "latents_classes", "latents_values")
_CHUNK = 8192  # images streamed per step while loading a file


def _geometry(values: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The tables both renderers index (float64, computed once by numpy, so a device computes no
    sine and both renderers start from the same numbers): ``cos`` and ``sin`` (scale x orientation)
    hold cos(theta) / scale and sin(theta) / scale; ``cx``, ``cy`` the sprite centres in pixels; the
    heart as (``angle``, ``normal``, ``offset``): its vertices' polar angles ascending, its edges'
    outward normals and offsets.

    The heart polygon is star-shaped about the origin, so a point p with polar angle phi is inside
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
    scale, theta = values[1][:, None], values[2][None, :]
    return {"cos": np.cos(theta) / scale, "sin": np.sin(theta) / scale, "cx": _CENTRE0 + _SPAN * values[3],
            "cy": _CENTRE0 + _SPAN * values[4], "angle": angle, "normal": normal,
            "offset": normal[:, 0] * x + normal[:, 1] * y, "step": np.arange(_WIN, dtype=np.float64)}


# the array functions the renderers need (floor, maximum, arctan2, searchsorted on the right), for
# numpy and for torch: both renderers run the same code on the same tables
_NUMPY = (np.floor, np.maximum, np.arctan2, lambda a, v: np.searchsorted(a, v, side="right"))
_TORCH = (torch.floor, torch.maximum, torch.atan2, lambda a, v: torch.searchsorted(a, v, right=True))


def _frame(f, g: dict, ops):
    """Each image's 28 x 28 window around its sprite: the pixels' coordinates (x, y) in the upright
    sprite's frame at scale 1 (y up; (n, W, W) each), and the window's first row and column (n,)."""
    floor = ops[0]
    cx, cy = g["cx"][f[:, 3]], g["cy"][f[:, 4]]
    col0, row0 = floor(cx) - (_WIN // 2 - 1), floor(cy) - (_WIN // 2 - 1)
    u = ((col0[:, None] + g["step"]) - cx[:, None])[:, None, :]  # (n, 1, W): right of the centre
    v = (cy[:, None] - (row0[:, None] + g["step"]))[:, :, None]  # (n, W, 1): above the centre
    cos, sin = g["cos"][f[:, 1], f[:, 2]][:, None, None], g["sin"][f[:, 1], f[:, 2]][:, None, None]
    return cos * u + sin * v, cos * v - sin * u, row0, col0


def _inside(shape: int, x, y, g: dict, ops):
    """Whether each pixel (x, y) (``_frame``) lies strictly inside ``shape``.

    On a device the heart's polar angle comes from another arctan2 than numpy's (they differ in the
    last bit); over the whole grid no pixel lies within 1e-9 rad of a vertex's ray, so both pick the
    same edge and every image is the same bit for bit (tests/test_dsprites.py)."""
    _, maximum, atan2, searchsorted = ops
    if shape == 1:  # ellipse
        a, b = _ELLIPSE_AXES
        x, y = x / a, y / b
        return x * x + y * y < 1
    if shape == 0:
        return maximum(abs(x), abs(y)) < _SQUARE_HALF
    normal = g["normal"]
    edge = searchsorted(g["angle"], atan2(y, x)) - 1  # -1 -> the wrap-around edge (the last)
    return normal[edge, 0] * x + normal[edge, 1] * y < g["offset"][edge]


class DSprites(GroundTruthData):
    """dSprites (Matthey et al. 2017): 3 x 6 x 40 x 32 x 32 = 737,280 binary 64 x 64 images.

    Attributes: ``factor_names``, ``factor_sizes``, ``x_shape`` (1, 64, 64), ``shape_names``
    (square, ellipse, heart) and ``factor_values`` (list of arrays, the published latent values:
    shape 1..3, scale linspace(0.5, 1, 6), orientation linspace(0, 2 pi, 40), posX and posY
    linspace(0, 1, 32)). Observations are deterministic functions of the factors.

    Args:
        path: the official ``.npz`` file; ``None``: the data directory's copy (``python -m
            dislab.data.download dsprites``), or where there is none the images are rendered procedurally. The loader
            takes the factor grid from ``latents_classes`` (which must enumerate a full grid in
            row-major order with a single colour), so the official file gives the grid above.
    """

    factor_names = ("shape", "scale", "orientation", "posX", "posY")
    factor_sizes = (3, 6, 40, 32, 32)
    x_shape = (1, 64, 64)
    shape_names = ("square", "ellipse", "heart")
    stands_in_for = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"

    paints = True

    def __init__(self, path: str | os.PathLike | None = None, device: str = "auto"):
        device = check_device(device)
        path = self.from_data_dir("path", path)  # null: the data directory's copy, if downloaded
        loaded = None if path is None else _load_official(path)  # checks everything before any state
        self.path, self.device, self._bits = path, device, None
        self.factor_values = [
            np.arange(1.0, 4.0),
            np.linspace(0.5, 1.0, 6),
            np.linspace(0.0, 2 * np.pi, 40),
            np.linspace(0.0, 1.0, 32),
            np.linspace(0.0, 1.0, 32),
        ]
        self._geom = _geometry(self.factor_values)
        if loaded is not None:
            self._bits, self.factor_sizes, self.factor_values = loaded

    def sample_observations_from_factors(self, factors: np.ndarray, rng: np.random.Generator | None = None):
        """Images for ``factors`` (n, 5) int, as float32 (n, 1, 64, 64) in {0, 1}; ``rng`` unused."""
        f = self.check_factors(factors)
        if self._bits is not None:
            packed = self._bits[self.factors_to_index(f)]
            return np.unpackbits(packed, axis=1).reshape(len(f), 1, 64, 64).astype(np.float32)
        return self._render(f)

    def _render(self, f: np.ndarray) -> np.ndarray:
        n = len(f)
        order = np.argsort(f[:, 0], kind="stable")  # one contiguous block per shape
        f = f[order]
        x, y, row0, col0 = _frame(f, self._geom, _NUMPY)
        mask = np.empty((n, _WIN, _WIN), dtype=bool)
        bounds = np.searchsorted(f[:, 0], np.arange(4))
        for shape in range(3):
            a, b = bounds[shape], bounds[shape + 1]
            if a < b:
                mask[a:b] = _inside(shape, x[a:b], y[a:b], self._geom, _NUMPY)
        flat = (row0.astype(np.intp)[:, None, None] + np.arange(_WIN)[:, None]) * 64
        flat = flat + (col0.astype(np.intp) + order * 4096)[:, None, None] + np.arange(_WIN)
        out = np.zeros((n, 1, 64, 64), dtype=np.float32)
        out.reshape(-1)[flat.reshape(-1)] = mask.reshape(-1)
        return out

    def paint(self, factors: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """``_render`` with torch on ``factors.device``: the same code and float64 tables, so every
        image is the same bit for bit; each shape's test runs on every image and a selection keeps
        the right one (no host sync). With the official file: its bit-packed images are held on the
        device and unpacked there."""
        n, dev = len(factors), factors.device
        if self._bits is not None:
            t = self._device_tensors("file", dev, lambda: {"bits": self._bits,
                                                           "shift": np.arange(7, -1, -1, dtype=np.uint8)})
            packed = t["bits"][self._device_index(factors)]  # (n, 512)
            return ((packed[:, :, None] >> t["shift"]) & 1).view(n, 1, 64, 64).float()
        g = self._device_tensors("geometry", dev, lambda: self._geom)
        x, y, row0, col0 = _frame(factors, g, _TORCH)
        shape = factors[:, 0, None, None]
        mask = torch.where(shape == 0, _inside(0, x, y, g, _TORCH),
                           torch.where(shape == 1, _inside(1, x, y, g, _TORCH), _inside(2, x, y, g, _TORCH)))
        win = torch.arange(_WIN, device=dev)
        flat = ((row0.long()[:, None, None] + win[:, None]) * 64 + col0.long()[:, None, None] + win).view(n, -1)
        out = torch.zeros(n, 64 * 64, dtype=torch.float32, device=dev)
        return out.scatter_(1, flat, mask.view(n, -1).float()).view(n, 1, 64, 64)


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
