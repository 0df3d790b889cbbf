"""The pair sampler of the weakly-supervised methods (``dislab.data.pairs``): exactly the rule's number
of factors change, never a constant one, each to another value drawn uniformly; k = -1's law and
dlib's "1 or k"; batches seeded per step (a resume sees the same pairs); painted pairs equal numpy's."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from conftest import CONF, compose
from data_files import real_file_overrides
from dislab.data.ground_truth import GroundTruthData
from dislab.data.pairs import PairSampler
from dislab.data.toy import Toy

RNG = np.random.default_rng
CPU = torch.device("cpu")


class Grid(GroundTruthData):
    """A tiny set with a constant factor (size 1) and a binary one; images: the factors as pixels."""

    factor_names = ("a", "const", "b", "c")
    factor_sizes = (3, 1, 2, 5)
    x_shape = (1, 1, 4)

    def sample_observations_from_factors(self, factors, rng=None):
        return np.asarray(factors, np.float32)[:, None, None, :] / 5


def _counts(z1, z2):
    return (z1 != z2).sum(1)


@pytest.mark.parametrize("k", [1, 2])
def test_exactly_k_changes_exactly_k_varying_factors_each_to_another_value(k):
    s = PairSampler(Grid(), k=k, k_rule="exactly_k")
    z1, z2 = s.factors(4000, RNG(0))
    assert (_counts(z1, z2) == k).all()
    assert (z2[:, 1] == 0).all() and (z1[:, 1] == 0).all()  # the constant factor is never chosen
    flipped = z1[:, 2] != z2[:, 2]
    assert (z2[flipped, 2] == 1 - z1[flipped, 2]).all()  # a binary factor that changes takes its other value
    assert ((z1 >= 0) & (z2 < np.array(Grid.factor_sizes))).all()


def test_dlib_rule_changes_one_or_k_factors_with_probability_one_half():
    s = PairSampler(Toy(size=16), k=3)  # toy: 4 factors
    n = _counts(*s.factors(20000, RNG(1)))
    assert set(np.unique(n)) == {1, 3}
    assert abs((n == 1).mean() - 0.5) < 0.02  # binomial sd 0.0035
    assert (_counts(*PairSampler(Toy(size=16), k=1).factors(2000, RNG(1))) == 1).all()


@pytest.mark.parametrize("rule, law", [("exactly_k", [1 / 3, 1 / 3, 1 / 3]),
                                       ("one_or_k", [1 / 2 + 1 / 6, 1 / 6, 1 / 6])])
def test_k_minus_one_draws_k_uniformly_from_one_to_K_minus_one(rule, law):
    """Toy has K = 4 varying factors: k ~ U{1, 2, 3}; dlib's rule then changes 1 or k (1/2 each)."""
    n = _counts(*PairSampler(Toy(size=16), k=-1, k_rule=rule).factors(30000, RNG(2)))
    freq = np.bincount(n, minlength=5)[1:] / len(n)
    assert freq[3] == 0 and np.abs(freq[:3] - law).max() < 0.015  # sd <= 0.003


def test_the_changed_factors_are_a_uniform_subset_and_the_new_value_uniform_among_the_others():
    s = PairSampler(Toy(size=16), k=2, k_rule="exactly_k")
    z1, z2 = s.factors(60000, RNG(3))
    changed = z1 != z2
    assert np.abs(changed.mean(0) - 0.5).max() < 0.01  # each factor in 2 of 4: 1/2
    pairs = [(changed[:, i] & changed[:, j]).mean() for i, j in itertools.combinations(range(4), 2)]
    assert np.abs(np.array(pairs) - 1 / 6).max() < 0.01  # each of the 6 subsets of size 2: 1/6
    for f, size in enumerate(Toy.factor_sizes):  # posX: 8 values; intensity: 4
        c = changed[:, f]
        table = np.zeros((size, size))
        np.add.at(table, (z1[c, f], z2[c, f]), 1)
        assert np.trace(table) == 0  # never the old value
        rows = table / table.sum(1, keepdims=True)
        want = (1 - np.eye(size)) / (size - 1)
        assert np.abs(rows - want).max() < 0.04, f  # ~1,900-7,500 draws a row: sd <= 0.01


def test_refusals_name_the_value_and_what_is_allowed():
    with pytest.raises(ValueError, match=r"k=3 is not allowed for Grid: k must be -1 \(drawn per pair\) or in 1..2"):
        PairSampler(Grid(), k=3)
    with pytest.raises(ValueError, match="k=0 is not allowed"):
        PairSampler(Toy(size=16), k=0)
    with pytest.raises(ValueError, match="k_rule='some' is not allowed; use one of one_or_k, exactly_k"):
        PairSampler(Toy(size=16), k_rule="some")

    class One(Grid):
        factor_sizes = (1, 1, 4, 1)

    with pytest.raises(ValueError, match="pairs need at least two factors that vary; One has 1"):
        PairSampler(One())

    class NoFactors(Grid):
        has_factors = False

    with pytest.raises(ValueError, match="pairs need ground-truth factors, which NoFactors lacks"):
        PairSampler(NoFactors())


def test_a_pair_batch_is_the_two_images_of_the_pair_rule_rendered_as_one_batch():
    s = PairSampler(Toy(size=16), k=-1)
    x, changed = s.sample(32, RNG(4))
    z1, z2 = s.factors(32, RNG(4))
    d = Toy(size=16)
    assert x.shape == (32, 2, 1, 16, 16) and x.dtype == np.float32 and changed.dtype == bool
    assert np.array_equal(x[:, 0], d.sample_observations_from_factors(z1))
    assert np.array_equal(x[:, 1], d.sample_observations_from_factors(z2))
    assert np.array_equal(changed, z1 != z2)


def test_pair_batches_are_seeded_per_step_and_a_resume_sees_the_same_pairs():
    from dislab.data.datamodule import _Batches

    s = PairSampler(Toy(size=16), k=-1)
    run = list(itertools.islice(iter(_Batches(s.data, 8, seed=3, start=0, pairs=s)), 6))
    for t in (0, 5):
        x, changed = s.sample(8, RNG([3, t]))
        assert torch.equal(run[t][0], torch.from_numpy(x)) and torch.equal(run[t][1], torch.from_numpy(changed))
    resumed = list(itertools.islice(iter(_Batches(s.data, 8, seed=3, start=4, pairs=s)), 2))
    assert all(torch.equal(a, b) for ra, rb in zip(run[4:], resumed, strict=True) for a, b in zip(ra, rb, strict=True))
    other = next(iter(_Batches(s.data, 8, seed=4, start=0, pairs=s)))
    assert not torch.equal(other[0], run[0][0])


def test_painted_pairs_are_the_host_pairs_across_chunks_and_resumes(monkeypatch):
    """The device path (draws on the host, images painted by torch, here on the CPU) gives the numpy
    path's pairs, also for a set whose images draw random numbers (colour_dsprites' colours)."""
    from dislab.data import datamodule
    from dislab.data.color_dsprites import ColorDSprites
    from dislab.data.datamodule import _Batches

    monkeypatch.setattr(datamodule, "RENDER_IMAGES", 40)  # 2 steps of 2 x 10 images painted together
    for d in (ColorDSprites(), Toy(size=16)):
        s = PairSampler(d, k=-1)
        for start in (0, 3):
            host = list(itertools.islice(iter(_Batches(d, 10, seed=3, start=start, pairs=s)), 5))
            painted = list(itertools.islice(iter(_Batches(d, 10, 3, start, 2, device=CPU, pairs=s)), 5))
            for (xa, ca), (xb, cb) in zip(host, painted, strict=True):
                assert xb.shape == (10, 2, *d.x_shape) and torch.equal(xa, xb) and torch.equal(ca, cb), start


def _deterministic(data) -> bool:
    """Whether an image is a function of its factors alone (no random colour, noise or crop)."""
    f = data.sample_factors(4, RNG(0))
    return np.array_equal(data.sample_observations_from_factors(f, RNG(0)),
                          data.sample_observations_from_factors(f, RNG(1)))


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "dataset").glob("*.yaml")))
def test_every_ground_truth_data_set_serves_pairs(tmp_path, name):
    """Procedural and file-backed sets (small files in the official formats): exactly k factors differ,
    and each image is its factors' image; a folder of images (no factors) is refused in one line."""
    from hydra.utils import instantiate

    if "dsprites" in name:
        pytest.importorskip("dislab.data.dsprites")
    d = instantiate(compose([f"dataset={name}", *real_file_overrides(name, tmp_path)]).dataset)
    if not d.has_factors:
        with pytest.raises(ValueError, match="pairs need ground-truth factors, which Images lacks"):
            PairSampler(d)
        return
    s = PairSampler(d, k=1, k_rule="exactly_k")
    x, changed = s.sample(6, RNG(5))
    z1, z2 = s.factors(6, RNG(5))
    assert x.shape == (6, 2, *d.x_shape) and (changed.sum(1) == 1).all() and np.array_equal(changed, z1 != z2)
    if _deterministic(d):
        assert np.array_equal(x[:, 0], d.sample_observations_from_factors(z1))
        assert np.array_equal(x[:, 1], d.sample_observations_from_factors(z2))
