"""Pictures: what their labels, row order, active marks and best-latent marks are decided by (pure
functions on fixed arrays), and that they render (arrays in, arrays/bytes out)."""

from __future__ import annotations

import inspect
import io

import numpy as np
import pytest
from PIL import Image

from dislab.atomic import to_png
from dislab.data.toy import Toy
from dislab.metrics import udr as udr_module
from dislab.metrics.information import discrete_entropy
from dislab.metrics.mig import mig_on_codes, mutual_info_matrix
from dislab.viz.grid import labelled_grid
from dislab.viz.metric_pictures import STANDS_OUT, kl_bars, mi_table, mutual_info_heatmap
from dislab.viz.pictures import (
    latent_order,
    latent_plan,
    row_labels,
    traversal_codes,
    traversal_images,
    traversal_picture,
)
from dislab.viz.traversal_gif import traversal_frames, traversal_gif


def test_rows_are_ordered_by_kl_largest_first_ties_by_index():
    assert latent_order([0.5, 0.001, 2.0, 0.5, 0.02]).tolist() == [2, 0, 3, 4, 1]
    plan = latent_plan(5, [0.5, 0.001, 2.0, 0.5, 0.02])
    assert plan["order"].tolist() == [2, 0, 3, 4, 1]
    assert row_labels(plan) == ["z2  KL 2", "z0  KL 0.5", "z3  KL 0.5", "z4  KL 0.02", "z1  KL 0.001  inactive"]


def test_active_is_udrs_definition_strictly_above_0_01_nats():
    kl = np.array([0.0, 0.0099, 0.01, 0.0101, 1.0])
    plan = latent_plan(5, kl)
    _, udr_mask = udr_module._prepare(np.random.default_rng(0).normal(size=(20, 5)), kl, udr_module.KL_ACTIVE)
    assert plan["active"].tolist() == udr_mask.tolist() == [False, False, False, True, True]
    for fn in (udr_module.udr, udr_module.udr_on_codes, udr_module.udr_matrix):  # UDR's default is the same constant
        assert inspect.signature(fn).parameters["kl_threshold"].default == udr_module.KL_ACTIVE == 0.01


def test_a_gaussian_posterior_sweeps_the_priors_plus_minus_2():
    plan = latent_plan(3, [1.0, 2.0, 3.0], codes=np.full((10, 3), 7.0))  # codes do not matter with a KL
    assert plan["shared"] and np.allclose(plan["values"], np.linspace(-2, 2, 9)[None].repeat(3, 0))


def test_a_point_encoder_has_no_kl_and_sweeps_each_latents_central_95_percent():
    codes = np.c_[np.arange(1001.0), np.zeros(1001), -np.arange(1001.0) / 10]
    for kl in (None, [np.nan, 1.0, 1.0]):  # no KL, or one that is not finite
        plan = latent_plan(3, kl, codes)
        assert plan["kl"] is None and plan["active"] is None and plan["order"].tolist() == [0, 1, 2]
        assert not plan["shared"]
        assert np.allclose(plan["values"][0, [0, -1]], [25, 975])
        assert np.allclose(plan["values"][2, [0, -1]], [-97.5, -2.5])
        assert np.allclose(plan["values"][1], np.linspace(-2, 2, 9))  # a constant latent: the prior's range
        assert row_labels(plan) == ["z0  [25, 9.8e+02]", "z1  [-2, 2]", "z2  [-98, -2.5]"]


def test_traversal_codes_change_one_latent_per_row():
    mu, values = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4) * 10
    z = traversal_codes(mu, values)
    assert z.shape == (2, 3, 4, 3)
    for s in range(2):
        for j in range(3):
            for t in range(4):
                want = mu[s].copy()
                want[j] = values[j, t]
                assert np.array_equal(z[s, j, t], want)


def _coded(n=4000, seed=0):
    """Factors of Toy and codes: latent 2 = posX exactly, latents 0 and 1 both = posY (neither stands
    out), latent 3 = scale plus noise (a moderate lead), intensity in no latent (chance-level MI)."""
    rng = np.random.default_rng(seed)
    f = Toy().sample_factors(n, rng)
    codes = np.c_[f[:, 1], f[:, 1], f[:, 0], f[:, 2] + rng.normal(0, 1.2, n), rng.normal(size=n)].astype(float)
    return codes, f


def test_heatmap_mig_is_the_metrics_on_the_same_arrays():
    codes, f = _coded()
    f = np.c_[f, np.zeros(len(f), int)]  # a constant factor (dSprites' colour): left out, as by MIG
    for bins in (20, 7):
        t = mi_table(codes, f, num_bins=bins)
        assert t["mig"] == mig_on_codes(codes, f, num_bins=bins)["mig"]
        assert t["factors"].tolist() == [0, 1, 2, 3]
        want = mutual_info_matrix(codes, f[:, :4], num_bins=bins) / discrete_entropy(f[:, :4])
        assert np.allclose(t["mi"], want) and np.isclose(t["gap"].mean(), t["mig"])


def test_best_latent_is_marked_only_where_it_stands_out():
    t = mi_table(*_coded())
    gap = t["gap"]
    assert gap[0] > 0.9 and gap[1] < 1e-9 and 0.15 < gap[2] < 0.5 and gap[3] < 0.02  # the cases, as built
    assert t["best"].tolist() == [2, -1, 3, -1]
    assert STANDS_OUT == 0.1


def test_pictures_render_as_rgb():
    t = mi_table(*_coded(1000))
    img = mutual_info_heatmap(t, Toy.factor_names, sample="1,000 points")
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) > 100
    assert img.std() > 10  # not blank
    bars = kl_bars(np.array([0.5, 0.001, 2.0]), kl_points=100)
    png = to_png(bars)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and np.array_equal(np.asarray(Image.open(io.BytesIO(png))), bars)


def test_labelled_grid_fades_rows_and_leaves_empty_cells_white():
    black = np.zeros((2, 3, 1, 8, 8), np.float32)
    black[1, 0] = np.nan
    plain = labelled_grid([black], min_tile=8)
    faded = labelled_grid([black], faded_rows=[False, True], min_tile=8)
    assert plain.shape == faded.shape
    rows = np.flatnonzero((plain < 10).all(axis=2).any(axis=1))  # image rows holding black pixels
    top, bottom = rows[: len(rows) // 2], rows[len(rows) // 2:]
    assert faded[top].mean() == pytest.approx(plain[top].mean()) and faded[bottom].mean() > plain[bottom].mean() + 50
    labelled = labelled_grid([black], row_labels=["z0  KL 1", "z1"], min_tile=8)
    assert labelled.shape[1] > plain.shape[1]
    with pytest.raises(ValueError, match="row labels"):
        labelled_grid([black], row_labels=["one"])
    red = np.zeros((2, 2, 3, 8, 8), np.float32)
    red[:, :, 0] = 1
    colour = labelled_grid([red, red], block_images=[red[0, 0], red[0, 0]], block_titles=["a", "b"], min_tile=8)
    assert colour.shape[2] == 3 and ((colour[..., 0] == 255) & (colour[..., 1] == 0)).sum() == 10 * 64


class LinearModel:
    """A stand-in model: the image's mean as latent 0, a fixed picture per latent to decode."""

    def __init__(self, d=3):
        self.d = d
        self.basis = np.random.default_rng(0).random((d, 1, 16, 16)).astype(np.float32)

    def encode(self, x):
        mu = np.zeros((len(x), self.d))
        mu[:, 0] = x.mean((1, 2, 3))
        return mu, np.zeros_like(mu)

    def decode(self, z):
        return 0.5 + 0.5 * np.tanh(np.tensordot(z, self.basis, axes=1) / 2)  # the sigmoid, without overflow


def test_traversal_picture_and_gif():
    model, x = LinearModel(), np.random.default_rng(0).random((3, 1, 16, 16)).astype(np.float32)
    plan = latent_plan(3, [0.001, 1.0, 0.5], steps=5)
    images = traversal_images(model, x, plan["values"])
    assert images.shape == (3, 3, 5, 1, 16, 16)
    assert np.allclose(images[1, 2, 4], model.decode(traversal_codes(model.encode(x)[0], plan["values"])[1, 2, 4]))
    pic = traversal_picture(images, x, plan, kl_points=10)
    assert pic.dtype == np.uint8 and pic.shape[2] == 3 and pic.shape[1] > 3 * 6 * 48
    point = latent_plan(3, None, np.random.default_rng(1).normal(size=(50, 3)) * [1, 100, 0.01], steps=5)
    for p in (plan, point):
        frames = traversal_frames(traversal_images(model, x, p["values"]), x, p)
        assert len(frames) == 5 and len({f.shape for f in frames}) == 1  # labels differ, frames do not
        assert not np.array_equal(frames[0], frames[-1])
        gif = Image.open(io.BytesIO(traversal_gif(frames)))
        assert gif.format == "GIF" and gif.n_frames == 8 and gif.info.get("loop") == 0
