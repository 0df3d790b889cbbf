"""dSprites: the factor grid, the renderer against real frames of the data set, and the loader of
the published .npz on small files written in its format."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest

from dislab.data.dsprites import DSprites

SHARED = Path(os.environ.get("DISLAB_SHARED", Path(__file__).resolve().parents[2] / "shared"))
D = DSprites()
YS, XS = np.mgrid[0:64, 0:64]


def _img(*factors):
    return D.sample_observations_from_factors(np.array([factors]))[0, 0]


def _centre(img):
    a = img.sum()
    return (img * XS).sum() / a, (img * YS).sum() / a


def test_factor_grid():
    assert D.factor_sizes == (3, 6, 40, 32, 32) and len(D) == 737_280 and D.x_shape == (1, 64, 64)
    assert np.allclose(D.factor_values[1], [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert D.factor_values[2][0] == 0 and np.isclose(D.factor_values[2][-1], 2 * np.pi)
    assert D.factor_values[3][0] == 0 and D.factor_values[3][-1] == 1 and len(D.factor_values[4]) == 32


def test_index_factor_round_trip():
    idx = np.r_[0, len(D) - 1, np.random.default_rng(0).integers(0, len(D), 500)]
    f = D.index_to_factors(idx)
    assert (f[0] == 0).all() and (f[1] == np.array(D.factor_sizes) - 1).all()
    assert np.array_equal(D.factors_to_index(f), idx)
    assert D.factors_to_index(np.array([[0, 0, 0, 0, 1]]))[0] == 1  # posY varies fastest, as in the file


def test_images_are_binary_float32_and_deterministic():
    rng = np.random.default_rng(1)
    f = D.sample_factors(64, rng)
    a, b = D.sample_observations_from_factors(f), D.sample_observations_from_factors(f)
    assert a.dtype == np.float32 and a.shape == (64, 1, 64, 64) and np.array_equal(a, b)
    assert set(np.unique(a)) <= {0.0, 1.0} and (a.sum((1, 2, 3)) > 0).all()


def test_shapes_are_distinct_and_centred_where_the_factors_say():
    imgs = [_img(s, 5, 0, 16, 16) for s in range(3)]
    for a, b in itertools.combinations(imgs, 2):
        assert (a != b).sum() > 20
    cx, cy = _centre(imgs[0])  # the square is symmetric: its centre of mass is the sprite centre
    assert cx == pytest.approx(16 + 32 * 16 / 31 - 0.5, abs=0.5) and cy == pytest.approx(cx)


def test_position_moves_the_centre_of_mass_right_and_down():
    xs = [_centre(_img(1, 3, 0, k, 10))[0] for k in range(32)]
    ys = [_centre(_img(1, 3, 0, 10, k))[1] for k in range(32)]
    assert np.all(np.diff(xs) > 0) and np.all(np.diff(ys) > 0)
    assert xs[-1] - xs[0] == pytest.approx(32, abs=1)


def test_scale_grows_the_area():
    for shape in range(3):
        areas = [_img(shape, k, 7, 16, 16).sum() for k in range(6)]
        assert np.all(np.diff(areas) > 0), (shape, areas)
    assert _img(0, 5, 0, 0, 0).sum() == 400 and _img(0, 0, 0, 0, 0).sum() == 100  # 20 px and 10 px sides


def test_reproduces_the_real_frames():
    """Best IoU of each real frame over factor combinations near its centre of mass."""
    path = SHARED / "data" / "dsprites_reference_frames.npz"
    if not path.exists():
        pytest.fail(f"{path} is missing (set DISLAB_SHARED to the shared/ folder)")
    frames = np.load(path)["frames"].astype(bool)
    base = np.array(list(itertools.product(range(3), range(6), range(40), [0], [0])))
    t = D.sample_observations_from_factors(base)[:, 0] > 0
    area = t.sum((1, 2))
    tcx, tcy = (t * XS).sum((1, 2)) / area, (t * YS).sum((1, 2)) / area
    best = []
    for fr in frames:
        cx, cy = _centre(fr)
        cand = base.copy()
        cand[:, 3] = np.clip(np.round((cx - tcx) * 31 / 32), 0, 31)
        cand[:, 4] = np.clip(np.round((cy - tcy) * 31 / 32), 0, 31)
        img = D.sample_observations_from_factors(cand)[:, 0] > 0
        best.append(((img & fr).sum((1, 2)) / (img | fr).sum((1, 2))).max())
    best = np.array(best)
    assert best.mean() >= 0.95 and best.min() >= 0.85 and (best == 1).sum() >= 30, (best.mean(), best.min())


# -- the published file ---------------------------------------------------------------------
SMALL = (1, 3, 2, 2, 2, 2)  # colour x shape x scale x orientation x posX x posY


def _write(path, imgs=None, classes=None, **extra):
    n = int(np.prod(SMALL))
    classes = np.stack(np.unravel_index(np.arange(n), SMALL), 1).astype(np.int64) if classes is None else classes
    if imgs is None:
        imgs = np.zeros((n, 64, 64), np.uint8)
        imgs[np.arange(n), np.arange(n) % 64, np.arange(n) // 2] = 1  # a pixel that names the index
    fields = {"imgs": imgs, "latents_classes": classes, "latents_values": classes.astype(np.float64), **extra}
    np.savez_compressed(path, **fields)
    return path, imgs


def test_loader_serves_the_files_images_by_index(tmp_path):
    path, imgs = _write(tmp_path / "dsprites.npz")
    d = DSprites(path=path)
    assert d.factor_sizes == SMALL[1:] and len(d) == 48
    f = d.sample_factors(100, np.random.default_rng(0))
    got = d.sample_observations_from_factors(f)
    assert got.dtype == np.float32 and np.array_equal(got[:, 0], imgs[d.factors_to_index(f)].astype(np.float32))


@pytest.mark.parametrize("case", ["missing", "no_field", "dtype", "shape", "truncated", "grid", "pickle", "count"])
def test_bad_files_get_a_clear_error(tmp_path, case):
    p = tmp_path / "d.npz"
    n = int(np.prod(SMALL))
    if case == "missing":
        with pytest.raises(FileNotFoundError, match="does not exist"):
            DSprites(path=p)
        return
    if case == "no_field":
        np.savez(p, imgs=np.zeros((n, 64, 64), np.uint8))
        match = "no field 'latents_classes'"
    elif case == "dtype":
        _write(p, imgs=np.zeros((n, 64, 64), np.float32))
        match = "expected uint8"
    elif case == "shape":
        _write(p, imgs=np.zeros((n, 32, 32), np.uint8))
        match = "expected uint8 \\(n, 64, 64\\)"
    elif case == "truncated":
        _write(p)
        p.write_bytes(p.read_bytes()[:300])
        match = "not a readable .npz"
    elif case == "grid":
        classes = np.stack(np.unravel_index(np.arange(n), SMALL), 1)[::-1].copy()
        _write(p, classes=classes)
        match = "not the row-major grid"
    elif case == "pickle":
        _write(p, latents_classes=np.array([{"a": 1}] * n, dtype=object))
        match = "refusing to unpickle"
    else:
        _write(p, imgs=np.zeros((n - 1, 64, 64), np.uint8))
        match = "47 images but 48 rows"
    with pytest.raises(ValueError, match=match):
        DSprites(path=p)
