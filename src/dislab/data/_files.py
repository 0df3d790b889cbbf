"""Shared helpers of the file-backed data sets: path checks, memory-mapping an array stored
uncompressed inside an ``.npz`` (``np.load`` ignores ``mmap_mode`` for ``.npz``), uint8 images to
float32 channels-first, and resizing with Pillow. Nothing here executes code from a data file:
``.npy`` headers are parsed with ``np.lib.format`` and pickles are refused."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from dislab.data.ground_truth import GroundTruthData


def read_npy_header(fp) -> tuple:
    """(shape, fortran_order, dtype) of the .npy stream ``fp``, left positioned at the data."""
    version = np.lib.format.read_magic(fp)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return read(fp)


def existing(path, what: str, *, directory: bool = False, key: str = "path", fetch: str | None = None) -> Path:
    """``path`` as a Path, or a one-line FileNotFoundError naming it and what it should be; ``fetch``: the
    published set a null ``path`` would have read from the data directory (the line gives its download command)."""
    if path is None or str(path) == "":
        given = f"pass dataset.{key}=<{'folder' if directory else 'file'}>"
        if fetch:
            from dislab.data.source import data_dir, fetch_command

            raise FileNotFoundError(f"{what}: no {key} given and none in the data directory {data_dir()}; "
                                    f"download it once with `{fetch_command(fetch)}`, or {given}")
        raise FileNotFoundError(f"{what}: no file given; {given}")
    p = Path(str(path)).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{what}: {p} does not exist")
    if directory and not p.is_dir():
        raise FileNotFoundError(f"{what}: {p} is not a folder")
    if not directory and not p.is_file():
        raise FileNotFoundError(f"{what}: {p} is not a file")
    return p


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 (n, H, W[, C]) -> float32 (n, C, H, W) in [0, 1]."""
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[:, None]
    else:
        x = x.transpose(0, 3, 1, 2)
    return np.multiply(x, np.float32(1 / 255), dtype=np.float32)


class HeldImages(GroundTruthData):
    """A data set whose images are rows ``_rows(factors, params)`` of a uint8 array ``self.images``
    (N, H, W[, C]), served as ``to_float``. On a device an array held in memory is copied there once
    and indexed there (the same images bit for bit); a memory map stays on the host, read by index."""

    @property
    def paints(self) -> bool:
        return not isinstance(self.images, np.memmap)

    def _rows(self, factors, params):
        return self._device_index(factors)

    def paint(self, factors, params):
        held = self._device_tensors("images", factors.device, lambda: {"images": self.images})["images"]
        x = held[self._rows(factors, params)]
        return (x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2)).float() * (1 / 255)


def read_rows(array, index: np.ndarray) -> np.ndarray:
    """``array[index]`` for any (possibly repeated, unsorted) index, reading each needed row once
    in increasing order (fast on memory maps and HDF5 data sets)."""
    index = np.asarray(index, dtype=np.int64)
    uniq, inverse = np.unique(index, return_inverse=True)
    return np.asarray(array[uniq])[inverse.reshape(-1)]


def resize_uint8(images: np.ndarray, size: int = 64, threads: int | None = None) -> np.ndarray:
    """(n, H, W[, 3]) uint8 -> (n, size, size[, 3]) uint8 with Pillow's Lanczos filter (what
    disentanglement_lib's ``ANTIALIAS`` is); in threads (Pillow releases the GIL while resizing)."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    if images.shape[1:3] == (size, size):
        return np.ascontiguousarray(images, dtype=np.uint8)
    out = np.empty((len(images), size, size, *images.shape[3:]), dtype=np.uint8)

    threads = threads or os.cpu_count() or 1
    chunk = max(1, min(256, -(-len(images) // threads)))  # every thread gets work, even for 96 images

    def work(s):
        for i in range(s, min(s + chunk, len(images))):
            im = Image.fromarray(np.ascontiguousarray(images[i]))
            out[i] = np.asarray(im.resize((size, size), Image.LANCZOS))

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(0, len(images), chunk)))
    return out


def npz_member(path: Path, name: str, *, max_bytes: int, what: str) -> np.ndarray:
    """Array ``name`` of the ``.npz`` (or ``.npy``) at ``path``: memory-mapped when stored
    uncompressed, read into memory when compressed and at most ``max_bytes``; a one-line
    ValueError for a corrupt or truncated file, a missing member, or an object array."""
    size = path.stat().st_size
    if path.suffix == ".npy":
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise ValueError(f"{what}: {path} is not a readable .npy file ({e})") from None
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ValueError(f"{what}: {path} is not a readable .npz (zip) file, truncated or corrupt ({e})") from None
    with zf:
        members = {i.filename: i for i in zf.infolist()}
        info = members.get(f"{name}.npy")
        if info is None:
            have = ", ".join(sorted(m.removesuffix(".npy") for m in members)) or "nothing"
            raise ValueError(f"{what}: {path} has no array '{name}' (it holds: {have})")
        try:
            with zf.open(info) as f:
                shape, fortran, dtype = read_npy_header(f)
                header_len = f.tell()
        except Exception as e:  # noqa: BLE001 - any parse failure is a corrupt file
            raise ValueError(f"{what}: {path}: array '{name}' has an unreadable header ({e})") from None
        if dtype.hasobject:
            raise ValueError(f"{what}: {path}: array '{name}' holds Python objects; refusing to unpickle")
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if info.file_size != header_len + nbytes:
            raise ValueError(f"{what}: {path}: array '{name}' is truncated or corrupt "
                             f"({info.file_size} bytes for shape {shape} {dtype})")
        if info.compress_type == zipfile.ZIP_STORED:
            # the member's data starts after its local header (30 bytes + name + extra field)
            with open(path, "rb") as raw:
                raw.seek(info.header_offset)
                local = raw.read(30)
            if len(local) < 30 or local[:4] != b"PK\x03\x04":
                raise ValueError(f"{what}: {path} is corrupt (bad local header of '{name}')")
            start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + \
                int.from_bytes(local[28:30], "little") + header_len
            if start + nbytes > size:
                raise ValueError(f"{what}: {path} is truncated ({size} bytes; '{name}' needs {start + nbytes})")
            return np.memmap(path, dtype=dtype, mode="r", offset=start, shape=shape,
                             order="F" if fortran else "C")
        if nbytes > max_bytes:
            raise ValueError(f"{what}: {path}: '{name}' is compressed and needs {nbytes / 2**30:.1f} GiB in memory "
                             f"(budget {max_bytes / 2**30:.1f} GiB); re-save it uncompressed (np.savez) so it can be "
                             f"memory-mapped, or raise max_memory_gb")
        try:
            with zf.open(info) as f:
                return np.lib.format.read_array(f, allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise ValueError(f"{what}: {path}: array '{name}' is truncated or corrupt ({e})") from None
