"""dSprites: the factor grid, the procedural renderer (geometry, and against real frames of the data
set), and the loader of the official .npz on small files written in its format."""

from __future__ import annotations

import functools
import itertools
import os
from pathlib import Path

import numpy as np
import pytest

from data_files import DSPRITES_SMALL, dsprites_file, dsprites_grid
from dislab.data.dsprites import DSprites

SHARED = Path(os.environ.get("DISLAB_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
D = DSprites()
ROWS, COLS = np.mgrid[0:64, 0:64]


def _img(*factors) -> np.ndarray:
    return D.sample_observations_from_factors(np.array([factors]), np.random.default_rng(0))[0, 0]


def _centre(img) -> tuple[float, float]:
    """Centre of mass as (column, row)."""
    a = img.sum()
    return (img * COLS).sum() / a, (img * ROWS).sum() / a


# -- factor grid -----------------------------------------------------------------------------------
def test_factor_grid():
    assert D.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert D.factor_sizes == (3, 6, 40, 32, 32) and len(D) == 737_280 and D.x_shape == (1, 64, 64)
    assert [len(v) for v in D.factor_values] == list(D.factor_sizes)
    assert np.array_equal(D.factor_values[0], [1, 2, 3]) and D.shape_names == ("square", "ellipse", "heart")
    assert np.allclose(D.factor_values[1], [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert D.factor_values[2][0] == 0 and np.isclose(D.factor_values[2][-1], 2 * np.pi)  # both ends
    for v in D.factor_values[3:]:
        assert v[0] == 0 and v[-1] == 1 and np.allclose(np.diff(v), 1 / 31)


def test_index_factor_round_trip():
    idx = np.r_[0, len(D) - 1, np.random.default_rng(0).integers(0, len(D), 1000)]
    f = D.index_to_factors(idx)
    assert (f[0] == 0).all() and np.array_equal(f[1], np.array(D.factor_sizes) - 1)
    assert ((f >= 0) & (f < np.array(D.factor_sizes))).all()
    assert np.array_equal(D.factors_to_index(f), idx)
    assert D.factors_to_index(np.array([[0, 0, 0, 0, 1], [1, 0, 0, 0, 0]])).tolist() == [1, 6 * 40 * 32 * 32]


# -- renderer --------------------------------------------------------------------------------------
def test_images_are_binary_float32_and_deterministic():
    f = D.sample_factors(64, np.random.default_rng(1))
    a = D.sample_observations_from_factors(f, np.random.default_rng(2))
    b = D.sample_observations_from_factors(f, np.random.default_rng(3))
    assert a.dtype == np.float32 and a.shape == (64, 1, 64, 64) and np.array_equal(a, b)
    assert set(np.unique(a)) == {0.0, 1.0} and (a.sum((1, 2, 3)) >= 50).all()
    one_by_one = np.concatenate([D.sample_observations_from_factors(f[i : i + 1]) for i in range(len(f))])
    assert np.array_equal(a, one_by_one)  # a mixed batch renders each image where it belongs
    assert D.sample_observations_from_factors(f[:0]).shape == (0, 1, 64, 64)


def test_bad_factors_are_refused():
    with pytest.raises(ValueError, match="out of range"):
        D.sample_observations_from_factors(np.array([[3, 0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="shape"):
        D.sample_observations_from_factors(np.zeros((2, 4), np.int64))


def test_shapes_are_distinct():
    for scale, orient, x, y in [(5, 0, 16, 16), (2, 13, 3, 29), (0, 31, 30, 1)]:
        imgs = [_img(s, scale, orient, x, y) for s in range(3)]
        for a, b in itertools.combinations(imgs, 2):
            assert (a != b).sum() >= 8


def test_centred_where_the_factors_say():
    # the upright square is symmetric: its centre of mass is the sprite centre 15.5 + 32 * pos
    assert _centre(_img(0, 5, 0, 0, 0)) == (15.5, 15.5) and _centre(_img(0, 3, 0, 31, 31)) == (47.5, 47.5)
    for shape in range(3):
        xs = np.array([_centre(_img(shape, 3, 5, k, 10)) for k in range(32)])
        ys = np.array([_centre(_img(shape, 3, 5, 10, k)) for k in range(32)])
        assert np.all(np.diff(xs[:, 0]) > 0) and np.ptp(xs[:, 1]) < 0.5  # posX: right, same rows
        assert np.all(np.diff(ys[:, 1]) > 0) and np.ptp(ys[:, 0]) < 0.5  # posY: down, same columns
        assert xs[-1, 0] - xs[0, 0] == pytest.approx(32, abs=0.2) and ys[-1, 1] - ys[0, 1] == pytest.approx(32, abs=0.2)


def test_scale_grows_the_area():
    for shape, orient in itertools.product(range(3), (0, 7, 22)):
        areas = [_img(shape, k, orient, 16, 16).sum() for k in range(6)]
        assert np.all(np.diff(areas) > 0), (shape, orient, areas)
    assert [_img(0, k, 0, 0, 0).sum() for k in range(6)] == [100, 144, 196, 256, 324, 400]  # 10..20 px sides


def test_orientation_turns_counter_clockwise():
    c = 15.5 + 32 * 16 / 31  # the sprite centre, in rows and columns
    heart = _img(2, 5, 0, 16, 16)
    col, row = _centre(heart)
    assert row < c - 1 and col == pytest.approx(c, abs=0.1)  # upright, lobes up: mass above the centre
    col, row = _centre(_img(2, 5, 10, 16, 16))  # ~92 degrees counter-clockwise: lobes to the left
    assert col < c - 1 and row == pytest.approx(c, abs=0.3)
    assert np.array_equal(heart, _img(2, 5, 39, 16, 16))  # 0 and 2 pi
    ellipse = _img(1, 5, 0, 16, 16)
    assert np.ptp(COLS[ellipse > 0]) > np.ptp(ROWS[ellipse > 0])  # major axis horizontal at 0


@functools.cache
def _best_matches() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames, best IoU, best factors) of each real frame: template match of shape x scale x
    orientation at the frame's centre of mass, then the 5 best refined over the neighbouring positions."""
    path = SHARED / "data" / "dsprites_reference_frames.npz"
    if not path.exists():
        pytest.fail(f"{path} is missing (set DISLAB_SHARED to the shared/ folder)")
    frames = np.load(path)["frames"].astype(bool)
    base = np.array(list(itertools.product(range(3), range(6), range(40), [0], [0])))
    t = D.sample_observations_from_factors(base)[:, 0] > 0
    area = t.sum((1, 2))
    tcol, trow = (t * COLS).sum((1, 2)) / area, (t * ROWS).sum((1, 2)) / area

    def ious(cand, frame):
        img = D.sample_observations_from_factors(cand)[:, 0] > 0
        return (img & frame).sum((1, 2)) / (img | frame).sum((1, 2))

    best, factors = [], []
    for frame in frames:
        col, row = _centre(frame)
        cand = base.copy()
        cand[:, 3] = np.clip(np.round((col - tcol) * 31 / 32), 0, 31)
        cand[:, 4] = np.clip(np.round((row - trow) * 31 / 32), 0, 31)
        top = cand[np.argsort(-ious(cand, frame))[:5]]
        near = np.array([c + [0, 0, 0, dx, dy] for c in top for dx in (-1, 0, 1) for dy in (-1, 0, 1)])
        near = near[((near[:, 3:] >= 0) & (near[:, 3:] < 32)).all(1)]
        scores = ious(near, frame)
        best.append(scores.max())
        factors.append(near[scores.argmax()])
    return frames, np.array(best), np.array(factors)


def test_reproduces_the_real_frames():
    frames, best, _ = _best_matches()
    assert best.mean() >= 0.9 and best.min() >= 0.9, (best.mean(), best.min())
    assert (best == 1).sum() == len(frames), np.nonzero(best < 1)  # every frame, pixel for pixel


def test_device_renderer_reproduces_the_real_frames():
    """The torch renderer (as on a GPU, here on the CPU) draws every real frame pixel for pixel."""
    frames, _, factors = _best_matches()
    assert np.array_equal(D.render(factors, None, "cpu").numpy()[:, 0] > 0, frames)


# -- the official file -----------------------------------------------------------------------------
def test_loader_serves_the_files_images_by_index(tmp_path):
    path, imgs, values = dsprites_file(tmp_path / "dsprites.npz")
    d = DSprites(path=str(path))
    assert d.factor_sizes == DSPRITES_SMALL[1:] and len(d) == 72 and d._bits.nbytes == 72 * 512  # 1 bit a pixel
    assert np.allclose(d.factor_values[2], np.linspace(0, 2 * np.pi, 3)) and np.allclose(d.factor_values[0], [1, 2, 3])
    f = np.r_[d.index_to_factors(np.array([0, 71])), d.sample_factors(200, np.random.default_rng(0))]
    got = d.sample_observations_from_factors(f, np.random.default_rng(0))
    assert got.dtype == np.float32 and got.shape == (202, 1, 64, 64)
    assert np.array_equal(got[:, 0], imgs[d.factors_to_index(f)])
    assert np.array_equal(got[0, 0], imgs[0]) and np.array_equal(got[1, 0], imgs[71])
    assert d.paints and np.array_equal(d.render(f, None, "cpu").numpy(), got)  # as held on a GPU


def _corrupt(p):
    data = bytearray(p.read_bytes())
    data[len(data) // 3 : len(data) // 3 + 64] = bytes(64)  # inside the compressed imgs
    p.write_bytes(bytes(data))


BAD = {  # case: (how to make the file, words of the error)
    "not_npz": (lambda p: p.write_bytes(b"this is not an archive" * 10), "not a readable .npz"),
    "npy": (lambda p: np.save(p.with_suffix(".npy"), np.zeros(3)) or p.with_suffix(".npy").rename(p), "not an .npz"),
    "truncated": (lambda p: p.write_bytes(dsprites_file(p)[0].read_bytes()[:5000]), "not a readable .npz"),
    "corrupt": (lambda p: _corrupt(dsprites_file(p)[0]), "corrupt or truncated"),
    "no_imgs": (lambda p: dsprites_file(p, imgs=None), "missing field.*imgs"),
    "no_classes": (lambda p: dsprites_file(p, latents_classes=None), "missing field.*latents_classes"),
    "no_values": (lambda p: dsprites_file(p, latents_values=None), "missing field.*latents_values"),
    "imgs_dtype": (lambda p: dsprites_file(p, imgs=np.zeros((72, 64, 64), np.float32)), "imgs must be C-order uint8"),
    "imgs_shape": (lambda p: dsprites_file(p, imgs=np.zeros((72, 32, 32), np.uint8)), "imgs must be C-order uint8"),
    "imgs_count": (lambda p: dsprites_file(p, imgs=np.zeros((71, 64, 64), np.uint8)), "imgs must be C-order uint8"),
    "imgs_values": (lambda p: dsprites_file(p, imgs=np.full((72, 64, 64), 255, np.uint8)), "0/1 pixels"),
    "classes_dtype": (lambda p: dsprites_file(p, latents_classes=dsprites_grid().astype(np.float64)),
                      "integer \\(N, 6\\)"),
    "classes_shape": (lambda p: dsprites_file(p, latents_classes=dsprites_grid()[:, 1:]), "integer \\(N, 6\\)"),
    "classes_object": (lambda p: dsprites_file(p, latents_classes=np.array([{"a": 1}] * 72, dtype=object)),
                       "unreadable"),
    "order": (lambda p: dsprites_file(p, latents_classes=dsprites_grid()[[1, 0, *range(2, 72)]]),
              "not the row-major grid"),
    "incomplete": (lambda p: dsprites_file(p, latents_classes=dsprites_grid()[:-1]), "not the row-major grid"),
    "colours": (lambda p: dsprites_file(p, latents_classes=dsprites_grid((2, 3, 2, 3, 2, 1))), "single colour"),
    "values_shape": (lambda p: dsprites_file(p, latents_values=np.zeros((72, 5))), "latents_values must be"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_get_a_clear_one_line_error(tmp_path, case):
    p = tmp_path / "bad.npz"
    make, words = BAD[case]
    make(p)
    with pytest.raises(ValueError, match=words) as err:
        DSprites(path=p)
    assert str(p) in str(err.value) and "\n" not in str(err.value)


def test_missing_file_names_the_path(tmp_path):
    p = tmp_path / "nowhere" / "dsprites.npz"
    with pytest.raises(FileNotFoundError, match="does not exist") as err:
        DSprites(path=p)
    assert str(p) in str(err.value)
