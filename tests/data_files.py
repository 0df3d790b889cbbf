"""Small files in the official formats of the data sets (dSprites' .npz, 3dshapes.h5, MPI3D's .npz, smallNORB's
binary matrices, Cars3D's .mat files, a folder of images), written by the tests that read them."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from PIL import Image

RNG = np.random.default_rng


# ---- dsprites ------------------------------------------------------------------------------------
DSPRITES_SMALL = (1, 3, 2, 3, 2, 2)  # colour x shape x scale x orientation x posX x posY: 72 images


def dsprites_grid(sizes=DSPRITES_SMALL) -> np.ndarray:
    return np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), 1).astype(np.int64)


def dsprites_file(path, **fields):
    """A dSprites .npz in the official layout (field order, dtypes, a pickled metadata dict) on a small grid."""
    classes = dsprites_grid()
    n = len(classes)
    grids = [np.array([1.0]), np.arange(1.0, 4.0), np.linspace(0.5, 1, 2), np.linspace(0, 2 * np.pi, 3),
             np.linspace(0, 1, 2), np.linspace(0, 1, 2)]
    values = np.stack([g[c] for g, c in zip(grids, classes.T, strict=True)], 1)
    imgs = (np.random.default_rng(0).random((n, 64, 64)) < 0.3).astype(np.uint8)
    meta = np.array({"title": "dSprites (test)", "latents_sizes": np.array(DSPRITES_SMALL)}, dtype=object)
    out = {"metadata": meta, "imgs": imgs, "latents_classes": classes, "latents_values": values, **fields}
    np.savez_compressed(path, **{k: v for k, v in out.items() if v is not None})
    return path, imgs, values


# ---- shapes3d ------------------------------------------------------------------------------------
def shapes3d_file(path, sizes=(2, 2, 2, 2, 4, 2), *, chunks=None, compression=None, image_of=None):
    """A 3dshapes.h5 in the official layout over the first ``sizes`` values of each factor."""
    from dislab.data.shapes3d import VALUES

    grid = np.indices(sizes).reshape(len(sizes), -1).T
    labels = np.stack([VALUES[k][grid[:, k]] for k in range(6)], 1).astype(np.float64)
    images = np.zeros((len(grid), 64, 64, 3), np.uint8) if image_of is None else image_of(grid)
    if image_of is None:  # the image's row number, written into its first pixels
        images[:, 0, 0, 0], images[:, 0, 0, 1] = np.arange(len(grid)) % 256, np.arange(len(grid)) // 256
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images, chunks=chunks, compression=compression)
        f.create_dataset("labels", data=labels)
    return grid


# ---- mpi3d ---------------------------------------------------------------------------------------
MPI_SMALL = (2, 3, 2, 1, 1, 3, 2)


def mpi3d_images(sizes=MPI_SMALL):
    n = int(np.prod(sizes))
    x = np.zeros((n, 64, 64, 3), np.uint8)
    x[:, 0, 0, 0], x[:, 0, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
    return x


# ---- smallnorb -----------------------------------------------------------------------------------
NORB_MAGIC = {np.uint8: 0x1E3D4C55, np.int32: 0x1E3D4C54}


def norb_write(path, array):
    """A smallNORB binary matrix: magic, ndim, max(3, ndim) sizes (padded with 1), the elements."""
    a = np.ascontiguousarray(array)
    dims = list(a.shape) + [1] * (3 - a.ndim)
    head = np.array([NORB_MAGIC[a.dtype.type], a.ndim, *dims], "<i4")
    Path(path).write_bytes(head.tobytes() + a.astype(a.dtype.newbyteorder("<")).tobytes())


def smallnorb_folder(folder, side=16, drop=0):
    """Both halves over the whole grid, one instance per half (4 training, 0 testing); each image's left
    half holds elevation*18 + azimuth, its right half category*12 + lighting*2 + (1 for training)."""
    from dislab.data.smallnorb import CHUNKS

    folder.mkdir(exist_ok=True)
    grid = np.indices((5, 9, 18, 6)).reshape(4, -1).T
    for chunk, inst in zip(CHUNKS, (4, 0), strict=True):
        g = grid[drop:]
        n = len(g)
        img = np.zeros((n, 2, side, side), np.uint8)
        img[:, :, :, : side // 2] = (g[:, 1] * 18 + g[:, 2])[:, None, None, None]
        img[:, :, :, side // 2:] = (g[:, 0] * 12 + g[:, 3] * 2 + (inst == 4))[:, None, None, None]
        info = np.column_stack([np.full(n, inst), g[:, 1], g[:, 2] * 2, g[:, 3]]).astype(np.int32)
        norb_write(folder / f"smallnorb-{chunk}-dat.mat", img)
        norb_write(folder / f"smallnorb-{chunk}-cat.mat", g[:, 0].astype(np.int32))
        norb_write(folder / f"smallnorb-{chunk}-info.mat", info)
    return folder


# ---- cars3d --------------------------------------------------------------------------------------
def cars3d_folder(folder, side=8, count=183):
    """``count`` car files; each view is constant: red = elevation*60, green = azimuth*10, blue = car."""
    import scipy.io

    folder.mkdir(exist_ok=True)
    e, a = np.meshgrid(np.arange(4), np.arange(24), indexing="ij")
    for car in range(count):
        im = np.zeros((side, side, 3, 24, 4), np.uint8)
        im[:, :, 0], im[:, :, 1], im[:, :, 2] = (e * 60).T, (a * 10).T, car
        scipy.io.savemat(folder / f"car_{car + 1:03d}_mesh.mat", {"im": im})
    return folder


# ---- images --------------------------------------------------------------------------------------
def image_folder(folder, count=5):
    """Wide and tall images whose centred square is green and whose margins are red; one JPEG."""
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        w, h = (100 + 10 * i, 60) if i % 2 else (60, 90 + 10 * i)
        a = np.zeros((h, w, 3), np.uint8)
        a[..., 0] = 255
        s = min(w, h)
        a[(h - s) // 2:(h + s) // 2, (w - s) // 2:(w + s) // 2] = (0, 200, i * 40 % 256)
        Image.fromarray(a).save(folder / ("sub" if i == 0 else ".") / f"im{i}.{'jpg' if i == 3 else 'png'}")
    (folder / "notes.txt").write_text("not an image")
    return folder


# ---- the files a data set's YAML points at -------------------------------------------------------
def real_file_overrides(name, tmp_path):
    """``dataset.path=...`` (and the like) pointing at a small file in the official format."""
    if name == "shapes3d":
        shapes3d_file(tmp_path / "3dshapes.h5")
        return [f"dataset.path={tmp_path / '3dshapes.h5'}"]
    if name == "mpi3d":
        np.savez(tmp_path / "mpi3d_toy.npz", images=mpi3d_images())
        return [f"dataset.path={tmp_path / 'mpi3d_toy.npz'}", f"+dataset.factor_sizes={list(MPI_SMALL)}"]
    if name == "smallnorb":
        return [f"dataset.path={smallnorb_folder(tmp_path / 'norb', side=8)}"]
    if name == "cars3d":
        return [f"dataset.path={cars3d_folder(tmp_path / 'cars', side=4)}"]
    if name == "images":
        return [f"dataset.path={image_folder(tmp_path / 'faces', count=9)}"]
    if name == "scream_dsprites":
        Image.fromarray(RNG(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)).save(tmp_path / "scream.png")
        return [f"dataset.background={tmp_path / 'scream.png'}"]
    return []
