"""MIG: hand-computed cases and properties (Chen et al. 2018; disentanglement_lib's discrete MIG)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dislab.data.toy import Toy
from dislab.metrics.mig import mig, mig_on_codes, mutual_info_matrix


def _factors(n=4000, seed=0):
    return Toy().sample_factors(n, np.random.default_rng(seed))


def test_hand_computed_case():
    v = np.array([[0], [0], [1], [1]])
    perfect = mig_on_codes(np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float), v)["mig"]
    assert perfect == pytest.approx(1.0)
    # z2 = [0,0,0,1]: I(z2; v) = ln2 - 3/4 * H(1/3, 2/3)
    h = -(1 / 3) * math.log(1 / 3) - (2 / 3) * math.log(2 / 3)
    expected = (math.log(2) - (math.log(2) - 0.75 * h)) / math.log(2)
    got = mig_on_codes(np.array([[0, 0], [0, 0], [1, 0], [1, 1]], float), v)["mig"]
    assert got == pytest.approx(expected, abs=1e-12)


def test_identity_code_scores_about_one():
    f = _factors()
    assert mig_on_codes(f.astype(float), f)["mig"] > 0.97


def test_constant_code_scores_zero():
    f = _factors()
    assert mig_on_codes(np.zeros((len(f), 4)), f)["mig"] == 0.0


def test_duplicated_latent_lowers_it():
    f = _factors()
    ident = mig_on_codes(f.astype(float), f)["mig"]
    dup = mig_on_codes(np.c_[f[:, :1], f].astype(float), f)["mig"]
    assert dup < ident - 0.2  # factor 0 now has a gap of 0


def test_invariant_to_permuting_and_rescaling_latents():
    f = _factors()
    codes = f + np.random.default_rng(1).normal(0, 0.3, f.shape)
    base = mig_on_codes(codes, f)["mig"]
    assert mig_on_codes(codes[:, ::-1] * [3, -2, 0.5, 7] + 4, f)["mig"] == pytest.approx(base)


def test_constant_factor_is_excluded():
    f = _factors()
    with_const = np.c_[f, np.zeros(len(f), int)]
    assert mig_on_codes(f.astype(float), with_const)["mig"] == pytest.approx(mig_on_codes(f.astype(float), f)["mig"])


def test_mutual_info_matrix_shape_and_diagonal():
    f = _factors()
    m = mutual_info_matrix(f.astype(float), f)
    assert m.shape == (4, 4) and np.all(np.argmax(m, axis=0) == np.arange(4))


def test_sampler_is_deterministic_and_scores_a_good_encoder_high():
    data = Toy()

    def represent(x):  # reads position, scale and intensity back off the picture
        img = x[:, 0]
        on = img > 0
        cols, rows = on.any(1), on.any(2)
        return np.stack([cols.argmax(1), rows.argmax(1), cols.sum(1), img.max((1, 2))], 1).astype(float)

    a = mig(data, represent, np.random.default_rng(3), num_train=1000)
    b = mig(data, represent, np.random.default_rng(3), num_train=1000)
    assert a == b and a["mig"] > 0.9
    noise = mig(data, lambda x: np.random.default_rng(0).normal(size=(len(x), 4)), np.random.default_rng(3),
                num_train=1000)
    assert noise["mig"] < 0.05


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="codes"):
        mig_on_codes(np.zeros((5, 2)), np.zeros((4, 1), int))
    with pytest.raises(ValueError, match="NaN"):
        mig_on_codes(np.full((4, 2), np.nan), np.array([[0], [1], [0], [1]]))
