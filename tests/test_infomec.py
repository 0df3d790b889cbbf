"""InfoMEC (Hsu et al. 2023) on closed forms, hand-computed cases and a restatement of the authors'
``compute_infomec`` (github.com/kylehkhsu/latent_quantization, disentangle/metrics/infomec.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.feature_selection import mutual_info_classif
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import mutual_info_score

from dislab.data.toy import Toy
from dislab.metrics._sampling import sample_codes, seed_from
from dislab.metrics.infomec import infoc, infom, infomec, infomec_on_codes


def _grid(*sizes):
    """Every combination of the factor values once: independent, uniform sources."""
    return np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), -1).reshape(-1, len(sizes))


def _hb(p):
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def test_one_to_one_duplicated_and_mixed_codes_by_hand():
    s = _grid(3, 4)
    # a permuted copy of the sources: NMI is a permutation matrix
    got = infomec_on_codes(s[:, ::-1].astype(float), s, estimator="discrete")
    assert got["infom"] == pytest.approx(1.0) and got["infoc"] == pytest.approx(1.0)
    assert got["infoe"] == pytest.approx(1.0, abs=1e-3) and got["infomec_num_active_latents"] == 2
    # source 0 copied twice: NMI rows (1, 1, 0) and (0, 0, 1); every latent serves one source (InfoM 1);
    # source 0 spreads over two of three latents: InfoC = ((1/2 + 1) / 2 - 1/3) / (1 - 1/3) = 5/8
    got = infomec_on_codes(np.c_[s[:, 0], s[:, 0], s[:, 1]].astype(float), s, estimator="discrete")
    assert got["infom"] == pytest.approx(1.0) and got["infoc"] == pytest.approx(5 / 8)
    # one latent holds both sources (a bijection of the pair), the other source 1: NMI columns (1, 1), (0, 1):
    # InfoM = ((1/2 + 1) / 2 - 1/2) / (1/2) = 1/2; rows (1, 0), (1, 1): InfoC = 1/2 as well
    got = infomec_on_codes(np.c_[4 * s[:, 0] + s[:, 1], s[:, 1]].astype(float), s, estimator="discrete")
    assert got["infom"] == pytest.approx(0.5) and got["infoc"] == pytest.approx(0.5)


def test_a_noisy_latent_by_hand():
    """Source 0 binary, latent 0 = source 0 flipped for 1 point in 4, latent 1 = source 1, latent 2 = source 0:
    I(s0; z0) = log 2 - H_b(1/4), so NMI (rows: sources) = [[a, 0, 1], [0, 1, 0]] with a = 1 - H_b(1/4)/log 2.
    InfoM: every latent serves one source (1). InfoC = ((1/(1+a) + 1)/2 - 1/3) / (2/3). InfoE from latent 0
    alone: the one-hot logistic model is saturated, p(s0 | z0) = 3/4, so InfoE_0 = a and InfoE_1 = 0."""
    s0 = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    z0 = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    s = np.c_[np.tile(s0, 2), np.repeat([0, 1], 8)]  # source 1 independent of source 0 and of z0
    z = np.c_[np.tile(z0, 2), s[:, 1], s[:, 0]].astype(float)
    a = 1 - _hb(0.25) / math.log(2)
    got = infomec_on_codes(z, s, estimator="discrete")
    assert got["infom"] == pytest.approx(1.0)
    assert got["infoc"] == pytest.approx(((1 / (1 + a) + 1) / 2 - 1 / 3) / (2 / 3))
    assert infomec_on_codes(z[:, :1], s, estimator="discrete")["infoe"] == pytest.approx(a / 2, abs=1e-4)
    assert a == pytest.approx(0.1887, abs=1e-4)


def test_inactive_latents_are_pruned_by_range():
    """Binned estimator on two-valued latents (bins 1 and 20: exact). A third latent copying source 0 at
    1/21 of the largest range is pruned (InfoC 1); at 1/19 it counts (InfoC 5/8, as for a duplicate)."""
    s = _grid(2, 2).repeat(5, axis=0)
    for scale, want in ((1 / 21, 1.0), (1 / 19, 5 / 8)):
        z = np.c_[s, scale * s[:, 0]].astype(float)
        got = infomec_on_codes(z, s, estimator="binned")
        assert got["infoc"] == pytest.approx(want) and got["infom"] == pytest.approx(1.0)
        assert got["infomec_num_active_latents"] == (2 if scale < 1 / 20 else 3)
    # discrete latents: every latent that varies is active, whatever its range
    assert infomec_on_codes(np.c_[s, s[:, 0] / 21].astype(float), s, estimator="discrete")["infoc"] == \
        pytest.approx(5 / 8)


def test_degenerate_cases_are_defined():
    s = _grid(3, 3)
    flat = infomec_on_codes(np.zeros((9, 2)), s)
    assert flat["infom"] == 0.0 and flat["infoc"] == 0.0 and flat["infomec_num_active_latents"] == 0
    assert flat["infoe"] == pytest.approx(0.0, abs=1e-9)  # balanced: the classifier stays uniform
    # a latent with no information about any source is left out of InfoM (the authors' code: NaN)
    assert infom(np.array([[1.0, 0.0], [0.0, 0.0]])) == 1.0
    # a source no latent informs counts as evenly spread in InfoC; with one latent InfoC is its coverage
    assert infoc(np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])) == pytest.approx(0.5)
    assert infoc(np.array([[0.7], [0.0]])) == 0.5 and infom(np.array([[0.3, 0.9]])) == 1.0
    with pytest.raises(ValueError, match="estimator='knn'"):
        infomec_on_codes(np.zeros((9, 2)), s, estimator="knn")


def test_no_input_entropy_is_log_of_the_number_of_values():
    """The authors' H(s) is the cross-entropy of their classifier fitted on all-zero inputs: with balanced
    class weights it is uniform whatever the class frequencies, so H(s) = log(number of values)."""
    y = np.array([0] * 10 + [1] * 3 + [2] * 7)
    model = LogisticRegression(C=np.inf, class_weight="balanced").fit(np.zeros((20, 3)), y)
    p = model.predict_proba(np.zeros((20, 3)))
    assert -np.mean(np.log(p[np.arange(20), y])) == pytest.approx(math.log(3), abs=1e-9)


def _authors_infomec(sources, latents, seed):
    """compute_infomec(sources, latents, discrete_latents=False), restated: NMI by mutual_info_classif on
    standardised latents (10 neighbours) over the plug-in source entropy; prune ranges <= max / 20;
    InfoM, InfoC as written there; InfoE with the unpenalised balanced logistic regression."""
    z = (latents - latents.mean(0)) / latents.std(0)
    k, d = sources.shape[1], latents.shape[1]
    nmi = np.empty((k, d))
    for i in range(k):
        for j in range(d):
            nmi[i, j] = mutual_info_classif(z[:, [j]], sources[:, i], discrete_features=False, n_neighbors=10,
                                            random_state=seed)[0]
        nmi[i] /= mutual_info_score(sources[:, i], sources[:, i])
    ranges = latents.max(0) - latents.min(0)
    p = nmi[:, ranges > ranges.max() / 20]
    da = p.shape[1]
    im = (np.mean(p.max(0) / p.sum(0)) - 1 / k) / (1 - 1 / k)
    ic = (np.mean(p.max(1) / p.sum(1)) - 1 / da) / (1 - 1 / da)
    ie = []
    for i in range(k):
        m = LogisticRegression(C=np.inf, class_weight="balanced", max_iter=100).fit(z, sources[:, i])
        q = np.clip(m.predict_proba(z)[np.arange(len(z)), sources[:, i]], 1e-16, 1)
        h = math.log(len(np.unique(sources[:, i])))
        ie.append((h + np.mean(np.log(q))) / h)
    return {"infom": im, "infoc": ic, "infoe": np.mean(ie), "infomec_num_active_latents": float(da)}


def test_ksg_estimator_equals_the_authors_definition_on_continuous_codes():
    rng = np.random.default_rng(0)
    s = rng.integers(0, [4, 3, 5], size=(600, 3))
    z = np.c_[s[:, 0] + 0.5 * s[:, 1], s[:, 2] * 2.0, s[:, 1] - 0.3 * s[:, 2], 0.01 * s[:, 0]] \
        + rng.normal(0, 0.5, (600, 4)) * [1, 1, 1, 0.01]
    got = infomec_on_codes(z, s, random_state=7)
    want = _authors_infomec(s, z, 7)
    assert got == pytest.approx(want, abs=1e-9)
    assert got["infomec_num_active_latents"] == 3 and 0.2 < got["infom"] < 0.9 and 0.2 < got["infoc"] < 0.9


def test_sampler_scores_one_sample():
    def represent(x):
        return np.c_[x.mean((1, 2, 3)), x[:, 0, 20:40].mean((1, 2))] + x[:, 0, 0, :2]

    rng = np.random.default_rng(4)
    got = infomec(Toy(), represent, rng, num_train=300, estimator="binned")
    rng = np.random.default_rng(4)
    codes, factors = sample_codes(Toy(), represent, 300, rng, 16)
    assert got == infomec_on_codes(codes, factors, estimator="binned", random_state=seed_from(rng))


def test_defaults_are_the_authors():
    """compute_infomec(discrete_latents=False) on the authors' 10,000 validation points."""
    import inspect

    p = inspect.signature(infomec).parameters
    assert (p["num_train"].default, p["estimator"].default, p["n_neighbors"].default) == (10_000, "ksg", 10)
    assert (p["prune_threshold"].default, p["max_iter"].default) == (1 / 20, 100)
    kernel = inspect.signature(infomec_on_codes).parameters  # the array kernel's knobs default as the metric's
    assert all(kernel[n].default == p[n].default for n in kernel if n in p and n != "random_state")
