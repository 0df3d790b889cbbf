"""3dshapes (Burgess & Kim 2018, https://github.com/deepmind/3d-shapes; used in Kim & Mnih 2018,
"Disentangling by Factorising"): one object in a room under a camera that orbits it.

Factors (row-major in this order, as in the published file): floor_hue 10, wall_hue 10,
object_hue 10 (hues 0, 0.1, ..., 0.9 of HSV: ten distinct colours, the published label values),
scale 8 (linspace(0.75, 1.25)), shape 4 (cube, cylinder, sphere, capsule), orientation 15
(linspace(-30, 30) degrees of camera azimuth around the object). 480,000 points.

``path=None``: a procedural numpy renderer. Each (shape, scale, orientation) is ray-cast once
(2x2 supersampled, Lambert shading from one directional light, cast shadows) into three weight
maps, one per part (floor, wall, object): the fraction of the pixel covered by that part times its
shading. An image is then the weight maps mixed with the three hue colours, so a floor hue changes
floor pixels only, and so on. The 480 geometries are rendered lazily and cached per process. On a
device (``paint``) the maps are held there and mixed there (within 1e-6 of numpy's mixing).

``path=...3dshapes.h5``: the official file (``images`` (480000, 64, 64, 3) uint8, ``labels``
(480000, 6) float64 factor values), read lazily by index (sorted unique indices per batch; a
memory map when the data set is stored contiguous and uncompressed), never loaded whole. The
labels are checked against the row-major grid of their own unique values; a smaller grid than the
published one is accepted (with a warning) when the labels say so.
"""

from __future__ import annotations

import colorsys
import logging

import numpy as np
import torch

from dislab.data._device import check_device
from dislab.data._files import existing, read_rows, to_float
from dislab.data.ground_truth import GroundTruthData

log = logging.getLogger("dislab")
NAMES = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
SIZES = (10, 10, 10, 8, 4, 15)
VALUES = (np.arange(10) / 10, np.arange(10) / 10, np.arange(10) / 10, np.linspace(0.75, 1.25, 8),
          np.arange(4, dtype=np.float64), np.linspace(-30, 30, 15))

# scene (world units, y up): floor y=0, walls x=-WALL and z=-WALL, object on the floor at the origin
WALL, RADIUS, HEIGHT, TARGET, FOV = 2.4, 4.0, 1.7, 0.5, 0.3  # FOV: tan of half the view angle
HALF = 0.42  # object half-width at scale 1
LIGHT = np.array([0.35, 1.0, 0.7]) / np.linalg.norm([0.35, 1.0, 0.7])
AMBIENT, SATURATION = 0.45, 0.85
_TABLES: dict = {}  # (size, supersample) -> (weights (480, 3, size*size) float32, done (480,) bool)


def _camera(orient_deg, size, ss):
    """Ray origins (K, 1, 3) and unit directions (K, M, 3), M = (size*ss)^2 subpixels."""
    az = np.radians(45.0 + np.asarray(orient_deg, dtype=np.float64))
    org = np.stack([RADIUS * np.sin(az), np.full_like(az, HEIGHT), RADIUS * np.cos(az)], -1)
    fwd = np.array([0.0, TARGET, 0.0]) - org
    fwd /= np.linalg.norm(fwd, axis=-1, keepdims=True)
    right = np.cross(fwd, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right, axis=-1, keepdims=True)
    up = np.cross(right, fwd)
    s = (np.arange(size * ss) + 0.5) / (size * ss) * 2 - 1
    y, x = np.meshgrid(-s, s, indexing="ij")
    d = fwd[:, None] + FOV * (x.reshape(1, -1, 1) * right[:, None] + y.reshape(1, -1, 1) * up[:, None])
    return org[:, None], d / np.linalg.norm(d, axis=-1, keepdims=True)


def _sphere(o, d, cy, r):
    oc = o - np.stack([np.zeros_like(cy), cy, np.zeros_like(cy)], -1)
    b = (oc * d).sum(-1)
    disc = b * b - ((oc * oc).sum(-1) - r * r)
    t = -b - np.sqrt(np.maximum(disc, 0))
    t = np.where((disc >= 0) & (t > 1e-6), t, np.inf)
    n = oc + np.where(np.isfinite(t), t, 0)[..., None] * d  # (o + t d) - centre
    return t, n / r[..., None]


def _cylinder(o, d, r, y0, y1, cap=True):
    """Vertical cylinder through the origin, radius r, y in [y0, y1]; top cap if ``cap``."""
    a = d[..., 0] ** 2 + d[..., 2] ** 2
    b = o[..., 0] * d[..., 0] + o[..., 2] * d[..., 2]
    disc = b * b - a * (o[..., 0] ** 2 + o[..., 2] ** 2 - r * r)
    t = (-b - np.sqrt(np.maximum(disc, 0))) / np.maximum(a, 1e-12)
    y = o[..., 1] + t * d[..., 1]
    t = np.where((disc >= 0) & (t > 1e-6) & (y >= y0) & (y <= y1), t, np.inf)
    p = o + np.where(np.isfinite(t), t, 0)[..., None] * d
    n = np.stack([p[..., 0], np.zeros_like(t), p[..., 2]], -1) / r[..., None]
    if cap:
        with np.errstate(divide="ignore", invalid="ignore"):
            tc = (y1 - o[..., 1]) / d[..., 1]
        pc = o + np.where(np.isfinite(tc), tc, 0)[..., None] * d
        tc = np.where((tc > 1e-6) & (pc[..., 0] ** 2 + pc[..., 2] ** 2 <= r * r), tc, np.inf)
        top = tc < t
        t = np.where(top, tc, t)
        n = np.where(top[..., None], np.array([0.0, 1.0, 0.0]), n)
    return t, n


def _object(o, d, shape, a):
    """Ray hits (t, normal) on the object ``shape`` of half-width a (K, 1) resting on the floor."""
    if shape == 0:  # cube [-a, a] x [0, 2a] x [-a, a]
        lo = np.concatenate([-a, 0 * a, -a], -1)[:, None]
        hi = np.concatenate([a, 2 * a, a], -1)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (lo - o) / d, (hi - o) / d
        near, far = np.minimum(t1, t2), np.maximum(t1, t2)
        tmin, tmax = near.max(-1), far.min(-1)
        t = np.where((tmax >= tmin) & (tmin > 1e-6), tmin, np.inf)
        axis = near.argmax(-1)
        n = -np.sign(d) * (np.arange(3) == axis[..., None])
        return t, n
    if shape == 1:  # cylinder of radius a and height 2a
        return _cylinder(o, d, a, 0 * a, 2 * a)
    if shape == 2:  # sphere of radius a
        return _sphere(o, d, a, a)
    r, top = 0.7 * a, 2.1 * a  # capsule: radius 0.7a, height 2.8a, standing
    t, n = _cylinder(o, d, r, r, top, cap=False)
    for cy in (r, top):
        ts, ns = _sphere(o, d, cy, r)
        closer = ts < t
        t, n = np.where(closer, ts, t), np.where(closer[..., None], ns, n)
    return t, n


def _key(f):
    """Geometry keys (shape*8 + scale)*15 + orientation of factors (n, 6): arrays or tensors."""
    return (f[:, 4] * 8 + f[:, 3]) * 15 + f[:, 5]


def _render(keys: np.ndarray, size: int, ss: int) -> np.ndarray:
    """Weight maps (len(keys), 3, size*size) for geometry keys (``_key``)."""
    shape, rest = np.divmod(keys, 8 * 15)
    scale, orient = np.divmod(rest, 15)
    o, d = _camera(VALUES[5][orient], size, ss)
    a = (HALF * VALUES[3][scale])[:, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        planes = np.stack([np.where(d[..., 1] < 0, -o[..., 1] / d[..., 1], np.inf),
                           np.where(d[..., 0] < 0, (-WALL - o[..., 0]) / d[..., 0], np.inf),
                           np.where(d[..., 2] < 0, (-WALL - o[..., 2]) / d[..., 2], np.inf)])
    which = planes.argmin(0)  # 0 floor, 1 and 2 the two walls
    t_bg = planes.min(0)
    n_bg = np.eye(3)[[1, 0, 2]][which]
    t_obj = np.full(d.shape[:2], np.inf)
    n_obj = np.zeros(d.shape)
    for s in np.unique(shape):
        m = shape == s
        t_obj[m], n_obj[m] = _object(o[m], d[m], int(s), a[m, 0])
    hit_obj = t_obj < t_bg
    # shadows on the floor and walls: is the object between the point and the light?
    p = o + np.where(hit_obj, 0, t_bg)[..., None] * d + 1e-4 * n_bg
    ls = np.broadcast_to(LIGHT, p.shape)
    t_sh = np.full(d.shape[:2], np.inf)
    for s in np.unique(shape):
        m = shape == s
        t_sh[m] = _object(p[m], ls[m], int(s), a[m, 0])[0]
    lit_bg = ~np.isfinite(t_sh)
    n = np.where(hit_obj[..., None], n_obj, n_bg)
    shade = AMBIENT + (1 - AMBIENT) * np.clip((n * LIGHT).sum(-1), 0, 1) * (hit_obj | lit_bg)
    part = np.where(hit_obj, 2, np.minimum(which, 1))
    w = (part[:, None] == np.arange(3)[None, :, None]) * shade[:, None]  # (K, 3, M)
    w = w.reshape(len(keys), 3, size, ss, size, ss).mean((3, 5))
    return w.reshape(len(keys), 3, size * size).astype(np.float32)


# (10, 3): the ten hues of floor, wall and object
HUE_RGB = np.array([colorsys.hsv_to_rgb(h, SATURATION, 1.0) for h in VALUES[0]], dtype=np.float32)


class _Chunked:
    """Rows of a chunked HDF5 data set by sorted unique index: one read per chunk touched (h5py's own
    fancy indexing on the first axis is ~100x slower)."""

    def __init__(self, ds):
        self.ds, self.chunk = ds, ds.chunks[0]

    def __getitem__(self, uniq):
        out = np.empty((len(uniq), *self.ds.shape[1:]), self.ds.dtype)
        cid = uniq // self.chunk
        starts = np.flatnonzero(np.r_[True, cid[1:] != cid[:-1]])
        for s, e in zip(starts, [*starts[1:], len(uniq)], strict=True):
            if e - s == 1:
                out[s] = self.ds[uniq[s]]
            else:
                out[s:e] = self.ds[uniq[s]:uniq[e - 1] + 1][uniq[s:e] - uniq[s]]
        return out


def uncompress(src, dst, block: int = 4096) -> None:
    """Copy a (compressed, chunked) 3dshapes.h5 to an uncompressed, contiguous one that
    ``Shapes3D(path=dst)`` memory-maps; streams ``block`` images at a time (bounded memory)."""
    import h5py

    with h5py.File(existing(src, "shapes3d"), "r") as f, h5py.File(dst, "w") as g:
        images = f["images"]
        out = g.create_dataset("images", shape=images.shape, dtype=images.dtype)
        for s in range(0, len(images), block):
            out[s:s + block] = images[s:s + block]
        g.create_dataset("labels", data=f["labels"][()])


class Shapes3D(GroundTruthData):
    factor_names = NAMES
    factor_sizes = SIZES
    x_shape = (3, 64, 64)
    stands_in_for = "3dshapes.h5"

    def __init__(self, path=None, supersample: int = 2, device: str = "auto"):
        if supersample < 1:
            raise ValueError(f"shapes3d: supersample={supersample} must be >= 1")
        path = self.from_data_dir("path", path)  # null: the data directory's copy, if downloaded
        self.path, self.supersample, self.device = path, int(supersample), check_device(device)
        self.factor_values = VALUES
        self._images = None
        if path is not None:
            self._open(path)

    # ---- the official file -------------------------------------------------------------
    def _open(self, path):
        import h5py

        p = existing(path, "shapes3d")
        try:
            f = h5py.File(p, "r")
        except OSError as e:
            raise ValueError(f"shapes3d: {p} is not a readable HDF5 file, truncated or corrupt ({e})") from None
        try:
            images, labels = self._check(f, p)
            n, labels = len(labels), np.round(labels, 6)  # float noise in stored values must not split a value
            values = tuple(np.unique(labels[:, k]) for k in range(6))
            sizes = tuple(len(v) for v in values)
            grid = np.indices(sizes).reshape(6, -1).T if n == np.prod(sizes) else None
            if grid is None or not all(np.array_equal(values[k][grid[:, k]], labels[:, k]) for k in range(6)):
                raise ValueError(f"shapes3d: {p}: the labels are not the row-major grid of "
                                 f"{'x'.join(map(str, sizes))} factor values over {', '.join(NAMES)}")
            if sizes != SIZES:
                log.warning("shapes3d: %s holds a %s grid, not the published %s", p, sizes, SIZES)
            mapped = self._memmap(images, p)
        except BaseException:
            f.close()
            raise
        self._file, self._images = f, mapped
        self.factor_sizes, self.factor_values = sizes, values

    @staticmethod
    def _check(f, p):
        for key in ("images", "labels"):
            if key not in f:
                held = ", ".join(f.keys()) or "nothing"
                raise ValueError(f"shapes3d: {p} has no data set '{key}' (it holds: {held})")
        images, labels = f["images"], f["labels"]
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (64, 64, 3):
            raise ValueError(f"shapes3d: {p}: 'images' is {images.dtype} {images.shape}, "
                             "expected uint8 (N, 64, 64, 3)")
        if labels.dtype.kind != "f" or labels.ndim != 2 or labels.shape[1] != 6 or len(labels) != len(images):
            raise ValueError(f"shapes3d: {p}: 'labels' is {labels.dtype} {labels.shape}, "
                             f"expected float ({len(images)}, 6)")
        try:
            labels = labels[()]
            images[len(images) - 1]  # reading the last image catches a truncated file early
        except (OSError, ValueError) as e:
            raise ValueError(f"shapes3d: {p} is truncated or corrupt ({e})") from None
        return images, labels

    @staticmethod
    def _memmap(images, p):
        """A memory map of 'images' when stored contiguous and uncompressed, else a chunk-wise reader."""
        offset = images.id.get_offset() if images.chunks is None and images.compression is None else None
        if offset is None:
            if images.compression is not None and images.chunks[0] > 1:
                log.warning("shapes3d: %s stores images %s-compressed in chunks of %d; every random read "
                            "decompresses a whole chunk. For full speed convert it once: python -m "
                            "dislab.data.shapes3d %s <uncompressed.h5>", p, images.compression, images.chunks[0], p)
            return _Chunked(images)
        if offset + images.size > p.stat().st_size:
            raise ValueError(f"shapes3d: {p} is truncated (images end past the end of the file)")
        return np.memmap(p, dtype=np.uint8, mode="r", offset=offset, shape=images.shape)

    # ---- sampling --------------------------------------------------------------------------
    @property
    def paints(self) -> bool:  # the procedural renderer paints on a device; the file is read on the host
        return self._images is None

    def sample_observations_from_factors(self, factors, rng=None):
        f = np.asarray(factors, dtype=np.int64).reshape(-1, 6)
        if self._images is not None:
            return to_float(read_rows(self._images, self.factors_to_index(f)))
        g = _key(f)
        colours = np.stack([HUE_RGB[f[:, p]] for p in range(3)], -1)  # (n, 3 rgb, 3 parts)
        out = np.matmul(colours, self._weights(g)[g])  # (n, 3, 4096)
        return np.clip(out, 0, 1).reshape(len(f), 3, 64, 64)

    def paint(self, factors, params):
        """The procedural images with torch on ``factors.device``: all 480 weight maps (rendered by
        numpy first if need be) held there and mixed by a batched matrix product, whose float32
        sums may round otherwise than numpy's (within 1e-6 of the numpy renderer)."""
        t = self._device_tensors("weights", factors.device,
                                 lambda: {"weights": self._weights(np.arange(480)), "hue": HUE_RGB})
        colours = torch.stack([t["hue"][factors[:, p]] for p in range(3)], -1)
        out = torch.matmul(colours, t["weights"][_key(factors)])
        return out.clamp_(0, 1).view(len(factors), 3, 64, 64)

    def _weights(self, keys: np.ndarray) -> np.ndarray:
        """The weight-map table (480, 3, 4096), with the maps of geometry ``keys`` rendered (each
        once per process)."""
        key = (64, self.supersample)
        if key not in _TABLES:
            _TABLES[key] = (np.zeros((480, 3, 64 * 64), np.float32), np.zeros(480, bool))
        table, done = _TABLES[key]
        todo = np.unique(keys[~done[keys]])
        for s in range(0, len(todo), 16):
            table[todo[s:s + 16]] = _render(todo[s:s + 16], 64, self.supersample)
            done[todo[s:s + 16]] = True
        return table

    def __getstate__(self):  # an open HDF5 file does not pickle: reopen on unpickling
        state = super().__getstate__()
        state.pop("_file", None)
        state["_images"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.path is not None:
            self._open(self.path)


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m dislab.data.shapes3d SRC_3dshapes.h5 DST_uncompressed.h5")
    uncompress(sys.argv[1], sys.argv[2])
