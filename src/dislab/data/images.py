"""Any folder of images (e.g. CelebA's ``img_align_celeba/``) as training data without factors.

Every image file under ``path`` (recursively; jpg, jpeg, png, bmp, gif, webp, tif, tiff) is centre
cropped to a square (the largest one, or ``crop`` pixels), resized to ``size`` x ``size`` with
Pillow (Lanczos) and converted to RGB. Decoding is far slower than training reads (~1,700
CelebA JPEGs/s per core), so the whole folder is decoded once, up front, into a uint8 array: in
memory when it fits ``max_memory_gb``, else (or whenever ``cache_dir`` is set) into a ``.npy``
in ``cache_dir`` keyed by the folder's listing and the settings, memory-mapped and reused by later
runs. Batches are then read at memory speed.

There are no ground-truth factors (``has_factors = False``: metrics are skipped). The one "factor"
is the image's index in sorted path order, ``factor_sizes = (N,)``, so sampling, index <-> factors
and the training-set size N behave as for any other data set.
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from dislab.data._device import check_device
from dislab.data._files import HeldImages, existing, to_float

log = logging.getLogger("dislab")
EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def load_image(path: Path, size: int = 64, crop: int | None = None) -> np.ndarray:
    """One image file as uint8 (size, size, 3): the centred square (of side ``crop`` pixels, or the
    largest) resized to ``size`` (Lanczos), in RGB."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            w0, h0 = im.size
            s0 = min(w0, h0) if crop is None else min(w0, h0, int(crop))
            # JPEG: decode at the smallest scale (1/2, 1/4, 1/8) that keeps the square >= size pixels
            im.draft("RGB", (max(1, w0 * size // s0), max(1, h0 * size // s0)))
            r = im.size[0] / w0
            w, h, s = im.size[0], im.size[1], s0 * r
            box = ((w - s) / 2, (h - s) / 2, (w + s) / 2, (h + s) / 2)
            return np.asarray(im.convert("RGB").resize((size, size), Image.LANCZOS, box=box), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as e:  # Pillow's errors for unreadable / truncated files
        raise ValueError(f"images: {path} is not a readable image ({e})") from None


class Images(HeldImages):
    has_factors = False
    factor_names = ("index",)

    def __init__(self, path=None, size: int = 64, crop: int | None = None, cache_dir=None,
                 max_memory_gb: float = 4.0, threads: int | None = None, device: str = "auto"):
        self.device = check_device(device)
        folder = existing(path, "images (a folder of image files)", directory=True)
        files = self.files_in(folder)
        if not files:
            raise ValueError(f"images: {folder} holds no image files ({', '.join(sorted(EXTENSIONS))})")
        if size < 8:
            raise ValueError(f"images: size={size} is too small")
        self.path, self.size, self.crop, self.files = folder, int(size), crop, files
        self.x_shape = (3, self.size, self.size)
        self.factor_sizes = (len(files),)
        self._threads = threads or os.cpu_count() or 1
        nbytes = len(files) * self.size * self.size * 3
        if cache_dir is None and nbytes > max_memory_gb * 2**30:
            raise ValueError(f"images: {folder} holds {len(files)} images = {nbytes / 2**30:.1f} GiB decoded, over "
                             f"max_memory_gb={max_memory_gb}; pass cache_dir=<folder> to keep them on disk")
        self.images = self._decode_all() if cache_dir is None else self._cached(Path(cache_dir))

    @classmethod
    def files_in(cls, folder):
        """Every image file under ``folder`` (recursively), in path order: the one factor's values."""
        return sorted(Path(r) / f for r, _, fs in os.walk(folder) for f in fs if Path(f).suffix.lower() in EXTENSIONS)

    def _decode_into(self, out: np.ndarray, block: int = 1024) -> None:
        load = lambda p: load_image(p, self.size, self.crop)  # noqa: E731
        with ThreadPoolExecutor(self._threads) as pool:  # Pillow releases the GIL while decoding
            for s in range(0, len(self.files), block):
                out[s:s + block] = np.stack(list(pool.map(load, self.files[s:s + block])))
                if s and s % (50 * block) == 0:
                    log.info("images: decoded %d / %d", s, len(self.files))

    def _decode_all(self) -> np.ndarray:
        out = np.empty((len(self.files), self.size, self.size, 3), dtype=np.uint8)
        self._decode_into(out)
        return out

    def _cached(self, cache_dir: Path) -> np.ndarray:
        h = hashlib.sha256(f"{self.path.resolve()}|{self.size}|{self.crop}".encode())
        for f in self.files:
            st = f.stat()
            h.update(f"{f.relative_to(self.path)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        target = cache_dir / f"images-{h.hexdigest()[:16]}.npy"
        shape = (len(self.files), self.size, self.size, 3)
        if target.exists():
            try:
                arr = np.load(target, mmap_mode="r", allow_pickle=False)
                if arr.shape == shape and arr.dtype == np.uint8:
                    return arr
            except (ValueError, OSError):
                pass
            log.warning("images: cache %s is unreadable or stale; rebuilding it", target)
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_dir / f".{target.name}.{os.getpid()}.tmp"
        try:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
            self._decode_into(out)
            out.flush()
            del out
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        log.info("images: cached %d decoded images in %s", len(self.files), target)
        return np.load(target, mmap_mode="r", allow_pickle=False)

    def sample_observations_from_factors(self, factors, rng=None):
        index = np.asarray(factors, dtype=np.int64).reshape(-1)
        return to_float(self.images[index])

    def _rows(self, factors, params):
        return factors[:, 0]
