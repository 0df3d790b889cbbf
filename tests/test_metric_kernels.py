"""Hand-computed cases for every metric's array kernel."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dislab.data.toy import Toy


def _grid():
    data = Toy()
    return data.index_to_factors(np.arange(len(data)))


# -- BetaVAE score ----------------------------------------------------------------------------------
def test_beta_vae_separable_and_degenerate_features():
    from dislab.metrics.beta_vae_score import beta_vae_on_codes, beta_vae_on_features

    rng = np.random.default_rng(0)
    fixed = rng.integers(0, 3, 60)
    z1 = rng.normal(size=(60, 5, 3))
    z2 = z1 + rng.normal(size=(60, 5, 3))
    z2[np.arange(60), :, fixed] = z1[np.arange(60), :, fixed]  # the fixed factor's latent does not move
    assert beta_vae_on_codes(z1, z2, fixed, num_train=40) == {"beta_vae_score": 1.0, "beta_vae_train_accuracy": 1.0}
    # identical features: the classifier can only predict the majority class of training (0)
    same = np.ones((4, 2))
    got = beta_vae_on_features(same, [0, 0, 0, 1], same[:3], [0, 1, 1])
    assert got["beta_vae_score"] == pytest.approx(1 / 3) and got["beta_vae_train_accuracy"] == pytest.approx(3 / 4)


def test_beta_vae_pairs_share_exactly_the_fixed_factor():
    from dislab.metrics.beta_vae_score import sample_pairs

    f1, f2, fixed = sample_pairs(Toy(), np.random.default_rng(0), 50, 8)
    assert np.all(f1[np.arange(50), :, fixed] == f2[np.arange(50), :, fixed])
    assert (f1 != f2).mean() > 0.5 and set(fixed) == {0, 1, 2, 3}


# -- FactorVAE score --------------------------------------------------------------------------------
def test_factor_vae_votes_by_hand():
    from dislab.metrics.factor_vae_score import factor_vae_on_codes

    rng = np.random.default_rng(0)

    def group(still):  # latent `still` constant over the group, the others vary
        z = rng.normal(size=(4, 3))
        z[:, still] = 0.3
        return z

    # training votes: fixed 0 -> latent 0 (x3), fixed 1 -> latent 1 (x2), fixed 1 -> latent 0 (x1)
    # evaluation: fixed 0 -> latent 1 (wrong: latent 1 says factor 1), fixed 1 -> latent 1 (right)
    plan = [(0, 0), (0, 0), (0, 0), (1, 1), (1, 1), (1, 0), (0, 1), (1, 1)]
    codes = np.stack([group(latent) for _, latent in plan])
    fixed = np.array([f for f, _ in plan])
    variances = np.array([1.0, 1.0, 0.04**2])  # latent 2 has std 0.04 < 0.05: pruned
    got = factor_vae_on_codes(codes, fixed, variances, num_train=6, num_factors=2)
    assert got == {"factor_vae_score": 0.5, "factor_vae_train_accuracy": 5 / 6, "factor_vae_num_active_dims": 2.0}


def test_factor_vae_prunes_by_standard_deviation():
    from dislab.metrics.factor_vae_score import active_dims

    # std 1, 0.1 (variance 0.01 < 0.05: kept), 0.04 (pruned), 0
    assert active_dims([1.0, 0.01, 0.0016, 0.0]).tolist() == [True, True, False, False]


def test_factor_vae_groups_hold_the_fixed_factor():
    from dislab.metrics.factor_vae_score import sample_groups

    g, fixed = sample_groups(Toy(), np.random.default_rng(1), 40, 6)
    assert all(len(np.unique(g[i, :, fixed[i]])) == 1 for i in range(40))


# -- DCI --------------------------------------------------------------------------------------------
def test_dci_from_importance_by_hand():
    from dislab.metrics.dci import completeness, disentanglement

    assert disentanglement(np.eye(3)) == pytest.approx(1.0) and completeness(np.eye(3)) == pytest.approx(1.0)
    r = np.array([[0.9, 0.1], [0.3, 0.3]])
    h = -(0.9 * math.log2(0.9) + 0.1 * math.log2(0.1))
    assert disentanglement(r) == pytest.approx((1 - h) * 1.0 / 1.6 + 0 * 0.6 / 1.6, abs=1e-9)
    hc = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))  # both columns split 3:1 between the latents
    assert completeness(r) == pytest.approx((1 - hc) * 1.2 / 1.6 + (1 - hc) * 0.4 / 1.6, abs=1e-9)
    assert disentanglement(np.zeros((2, 2))) == pytest.approx(0.0, abs=1e-9)
    assert disentanglement(np.array([[0.5], [0.0]])) == 1.0  # one factor: no NaN


def test_dci_on_a_perfect_and_a_constant_code():
    from dislab.metrics.dci import dci_on_codes

    f = Toy().sample_factors(600, np.random.default_rng(0))
    good = dci_on_codes(f.astype(float), f, n_estimators=20)
    assert good["dci_disentanglement"] > 0.95 and good["dci_completeness"] > 0.95 and good["dci_informativeness"] == 1
    flat = dci_on_codes(np.zeros((600, 3)), np.c_[f, np.zeros(600, int)], n_estimators=5)
    assert flat["dci_disentanglement"] == pytest.approx(0, abs=1e-6)
    assert flat["dci_completeness"] == pytest.approx(0, abs=1e-6)


def _binary_split():
    """Codes that read a balanced binary factor perfectly (+-5), and test labels that are all wrong."""
    f = np.tile([[0], [1]], (150, 1))
    return 10.0 * f - 5, f, 1 - f


def test_dci_informativeness_is_scored_on_the_test_points():
    from dislab.metrics.dci import dci_on_codes

    x, f, flipped = _binary_split()
    got = dci_on_codes(x, f, x, flipped, n_estimators=5)
    assert got["dci_informativeness"] == 0.0 and got["dci_informativeness_train"] == 1.0
    assert dci_on_codes(x, f, x, f, n_estimators=5)["dci_informativeness"] == 1.0


@pytest.mark.parametrize("name, key", [("dci", "dci_informativeness"), ("sap", "sap"), ("modularity", "explicitness")])
def test_samplers_draw_separate_test_points(monkeypatch, name, key):
    """The metric's second draw is its test set: here the first draw is read perfectly and the second
    one's labels are all wrong, so a score on held-out points is 0 (on the training points it is 1)."""
    import importlib

    mod = importlib.import_module(f"dislab.metrics.{name}")
    x, f, flipped = _binary_split()
    draws = iter([(x, f), (x, flipped)])
    monkeypatch.setattr(mod, "sample_codes", lambda *a, **k: next(draws))
    kw = {"n_estimators": 5} if name == "dci" else {}
    assert getattr(mod, name)(Toy(), None, np.random.default_rng(0), **kw)[key] == 0.0


# -- SAP --------------------------------------------------------------------------------------------
def test_sap_gap_and_continuous_score_by_hand():
    from dislab.metrics.sap import sap_on_codes, top_two_gap

    assert top_two_gap(np.array([[0.9, 0.2], [0.5, 0.6], [0.1, 0.1]])) == pytest.approx(0.4)
    f = Toy().sample_factors(1000, np.random.default_rng(0))[:, :2]
    noise = np.random.default_rng(1).normal(size=1000)
    # latent 0 = factor 0 exactly (R^2 = 1), latent 1 = noise; factor 1 has no linear latent
    x = np.c_[f[:, 0], noise]
    r2 = [np.corrcoef(a, b)[0, 1] ** 2 for a, b in ((noise, f[:, 0]), (f[:, 0], f[:, 1]), (noise, f[:, 1]))]
    got = sap_on_codes(x, f, continuous_factors=True, train_fraction=0.999)["sap"]
    n = math.ceil(1000 * 0.999)
    c = [np.corrcoef(x[:n, i], f[:n, j])[0, 1] ** 2 for i in range(2) for j in range(2)]
    assert got == pytest.approx(((1 - c[2]) + abs(c[1] - c[3])) / 2, abs=1e-9) and max(r2) < 0.01


def test_sap_accuracies_are_on_the_test_points_with_disentanglement_libs_svm():
    from dislab.metrics.sap import score_matrix

    x, f, flipped = _binary_split()
    assert score_matrix(x, f, x, f)[0, 0] == 1.0 and score_matrix(x, f, x, flipped)[0, 0] == 0.0
    # LinearSVC(C=0.01) (intercept regularised too) gives up on a binary factor read off a code at 5 / 6;
    # C = 1 reads it: the knob reaches the classifier and the default is disentanglement_lib's 0.01
    assert score_matrix(f + 5.0, f, f + 5.0, f)[0, 0] == 0.5 and score_matrix(f + 5.0, f, f + 5.0, f, C=1.0)[0, 0] == 1


# -- modularity -------------------------------------------------------------------------------------
def test_modularity_from_mutual_information_by_hand():
    from dislab.metrics.modularity import modularity_from_mi, modularity_on_codes

    # latent 0: one factor only (1); latent 1: two equally (1 - .25/.25 = 0); latent 2: nothing (0)
    assert modularity_from_mi(np.array([[1, 0], [0.5, 0.5], [0, 0]])) == pytest.approx(1 / 3)
    # three factors: delta = (0.2^2 + 0.1^2) / (0.4^2 * 2)
    assert modularity_from_mi(np.array([[0.4, 0.2, 0.1]])) == pytest.approx(1 - 0.05 / 0.32)
    f = Toy().sample_factors(1500, np.random.default_rng(0))
    x = np.c_[f.astype(float), np.zeros(1500)]  # + a constant latent: no NaN, it scores 0
    got = modularity_on_codes(x, f)
    assert got["modularity"] == pytest.approx(0.8, abs=0.01) and got["explicitness"] > 0.95


def test_explicitness_is_the_test_auc():
    from dislab.metrics.modularity import modularity_on_codes

    x, f, flipped = _binary_split()
    x = x + np.random.default_rng(0).normal(0, 0.1, x.shape)
    got = modularity_on_codes(x, f, x, flipped)
    assert got["explicitness"] == pytest.approx(0.0, abs=1e-12) and got["explicitness_train"] == 1.0


def test_explicitness_skips_a_value_missing_from_the_test_labels():
    from dislab.metrics.modularity import modularity_on_codes

    rng = np.random.default_rng(0)
    f = np.c_[rng.integers(0, 3, 300), rng.integers(0, 2, 300)]
    ft = np.c_[rng.integers(0, 2, 100), rng.integers(0, 2, 100)]  # value 2 never appears in the test set
    got = modularity_on_codes(f + rng.normal(0, 0.1, f.shape), f, ft + rng.normal(0, 0.1, ft.shape), ft)
    assert math.isfinite(got["explicitness"]) and got["explicitness"] > 0.9


# -- IRS --------------------------------------------------------------------------------------------
def test_irs_by_hand():
    from dislab.metrics.irs import irs_on_codes

    f = np.array([[0], [0], [1], [1]])
    z = np.array([[0.0, 0], [0, 1], [1, 0], [1, 1]])  # latent 0 follows the factor, latent 1 is nuisance
    # latent 0: within-value deviation 0 -> IRS 1; latent 1: deviation 0.5 / max 0.5 -> 0; weights 0.5, 0.5
    got = irs_on_codes(z, f, diff_quantile=1.0, num_bins=None)
    assert got == {"irs": 0.5, "irs_num_active_dims": 2.0}
    assert irs_on_codes(np.c_[z, np.full(4, 7.0)], np.c_[f, np.zeros(4, int)], diff_quantile=1.0,
                        num_bins=None) == got  # constant latent and constant factor are dropped
    assert irs_on_codes(np.zeros((4, 2)), f) == {"irs": 0.0, "irs_num_active_dims": 0.0}


def test_irs_at_the_default_quantile_weighted_by_max_deviation():
    from dislab.metrics.irs import irs_on_codes

    f = np.repeat([[0], [1]], 4, axis=0)
    z = np.c_[[0, 0, 0, 1, 4, 4, 4, 5], [0, 3, 0, 3, 0, 3, 0, 3]].astype(float)
    # latent 0, each value's deviations (.25, .25, .25, .75): 99th percentile (linear) .25 + .97 * .5;
    # max deviation from the overall mean 2.25 is 2.75. Latent 1 ignores the factor: IRS 0, max dev 1.5
    irs0 = 1 - (0.25 + 0.97 * 0.5) / 2.75
    assert irs_on_codes(z, f)["irs"] == pytest.approx((irs0 * 2.75 + 0 * 1.5) / (2.75 + 1.5), abs=1e-12)


# -- unsupervised -----------------------------------------------------------------------------------
def test_gaussian_scores_closed_form():
    from dislab.metrics.unsupervised import gaussian_total_correlation, gaussian_wasserstein_correlation

    rho = 0.6
    cov = np.array([[1, rho], [rho, 1]])
    assert gaussian_total_correlation(cov) == pytest.approx(-0.5 * math.log(1 - rho**2))
    assert gaussian_wasserstein_correlation(cov) == pytest.approx(4 - 2 * (math.sqrt(1 + rho) + math.sqrt(1 - rho)))
    assert gaussian_total_correlation(np.diag([2.0, 5.0])) == pytest.approx(0.0, abs=1e-12)
    assert gaussian_wasserstein_correlation(np.diag([2.0, 5.0])) == pytest.approx(0.0, abs=1e-9)


def test_unsupervised_on_codes():
    from dislab.metrics.unsupervised import unsupervised_on_codes

    rng = np.random.default_rng(0)
    z = rng.normal(size=(5000, 2)) @ np.linalg.cholesky(np.array([[1, 0.6], [0.6, 1]])).T
    got = unsupervised_on_codes(np.c_[z, np.zeros(5000)])  # a constant latent: no NaN
    assert got["gaussian_total_correlation"] == pytest.approx(-0.5 * math.log(1 - 0.36), abs=0.03)
    assert got["mutual_info_score"] > 0 and all(math.isfinite(v) for v in got.values())
    assert unsupervised_on_codes(np.zeros((10, 3))) == dict.fromkeys(
        ["gaussian_total_correlation", "gaussian_wasserstein_correlation", "gaussian_wasserstein_correlation_norm",
         "mutual_info_score"], 0.0)


def test_unsupervised_mutual_info_score_by_hand():
    from dislab.metrics.unsupervised import unsupervised_on_codes

    jitter = np.random.default_rng(0).normal(0, 1e-4, (100, 3))  # a non-singular covariance, the same bins
    z = np.tile([[0, 0, 0], [0, 0, 1], [1, 1, 0], [1, 1, 1]], (25, 1)) + jitter
    # latents 0 and 1 equal (MI ln 2 each way), latent 2 independent of both: 2 ln 2 over d^2 - d = 6 pairs
    assert unsupervised_on_codes(z)["mutual_info_score"] == pytest.approx(2 * math.log(2) / 6, abs=1e-12)


# -- Chen et al.'s MIG ------------------------------------------------------------------------------
def test_mig_chen_exact_on_separated_posteriors():
    from dislab.metrics.mig_chen import mig_chen_on_params, mutual_info_chen

    v = np.repeat([0, 1], 100)[:, None]
    mean = np.c_[10.0 * v[:, 0], np.zeros(200)]  # latent 0 separates the two values; latent 1 is the prior
    logvar = np.c_[np.full(200, -10.0), np.zeros(200)]
    mi = mutual_info_chen(mean, logvar, v, np.random.default_rng(0), num_samples=10_000)
    assert mi[0, 0] == pytest.approx(math.log(2), abs=1e-9) and mi[1, 0] == pytest.approx(0.0, abs=1e-9)
    assert mig_chen_on_params(mean, logvar, v, np.random.default_rng(0))["mig_chen"] == pytest.approx(1.0, abs=1e-9)


def test_mig_chen_matches_a_brute_force_estimate():
    """Every sample against every component, with scipy's log-density (no subsampling: num_samples >= n)."""
    from scipy.special import logsumexp
    from scipy.stats import norm

    from dislab.metrics.mig_chen import mutual_info_chen

    rng = np.random.default_rng(0)
    f = _grid()[::4][:200]
    mean = f[:, :3] * 0.3 + rng.normal(0, 0.5, (200, 3))
    logvar = rng.normal(-1, 0.5, (200, 3))
    z = mean + np.exp(0.5 * logvar) * np.random.default_rng(1).standard_normal(mean.shape)

    def h(idx):
        dens = norm.logpdf(z[idx][:, None, :], mean[idx][None], np.exp(0.5 * logvar[idx])[None])
        return -(logsumexp(dens, axis=1) - math.log(len(idx))).mean(0)

    want = np.zeros((3, 4))
    for k in range(4):
        vals = np.unique(f[:, k])
        cond = sum(np.mean(f[:, k] == v) * h(np.flatnonzero(f[:, k] == v)) for v in vals)
        want[:, k] = h(np.arange(200)) - cond
    got = mutual_info_chen(mean, logvar, f, np.random.default_rng(1), num_samples=1000)
    assert np.allclose(got, want, atol=1e-10)


def test_mig_chen_uses_the_full_grid_or_a_capped_subset():
    from dislab.metrics.mig_chen import mig_chen

    seen = []

    def encode(x):
        seen.append(len(x))
        return np.tile(x.mean((1, 2, 3))[:, None], (1, 2)) + np.arange(2), np.zeros((len(x), 2))

    mig_chen(Toy(), encode, np.random.default_rng(0), num_samples=50)
    assert sum(seen) == 1024
    seen.clear()
    mig_chen(Toy(), encode, np.random.default_rng(0), num_samples=50, max_points=300, encode_batch=128)
    assert sum(seen) == 300 and max(seen) == 128


# -- UDR --------------------------------------------------------------------------------------------
def test_udr_relative_strength_and_median_by_hand():
    from dislab.metrics.udr import relative_strength, udr_on_codes

    assert relative_strength(np.eye(3)) == 1.0
    # columns: 1^2/1 and 1^2/1 -> 1; rows: 1^2/2 and an all-zero row (0) -> 0.25; (1 + 0.25) / 2
    assert relative_strength(np.array([[1.0, 1.0], [0.0, 0.0]])) == pytest.approx(0.625)
    m = _grid().astype(float)
    kl = np.full(4, 1.0)
    third = np.c_[m[:, :2], m[:, 2] + m[:, 3], m[:, 3]]  # one latent of run 3 mixes two factors
    got = udr_on_codes([m, m[:, ::-1], third], [kl, kl, kl], variants=("spearman",))
    pairs = got["udr_spearman_pairs"]
    assert pairs[0, 1] == pytest.approx(1.0) and pairs[1, 0] == pytest.approx(1.0) and pairs[0, 2] < 1
    assert got["udr_spearman"][0] == pytest.approx(np.median([pairs[1, 0], pairs[2, 0]]))


def test_udr_score_is_the_median_of_the_others_lasso_similarity_to_it():
    """disentanglement_lib compute_udr_sklearn: UDR_ij = relative strength of |Lasso(z_i -> z_j).coef_|^T
    (rows: latents of i), run i's score the median over j != i of UDR_ji; four runs, so the median of
    three differs from their mean."""
    from sklearn.linear_model import Lasso

    from dislab.metrics.udr import relative_strength, udr_on_codes

    rng = np.random.default_rng(0)
    base = rng.normal(size=(400, 3))
    runs = [base, base @ rng.normal(size=(3, 3)), np.c_[base[:, :2], rng.normal(size=400)],
            base[:, ::-1] + rng.normal(0, 0.3, (400, 3))]
    kl = np.ones(3)
    got = udr_on_codes(runs, [kl] * 4, variants=("lasso",))
    pairs = got["udr_lasso_pairs"]
    std = [(r - r.mean(0)) / r.std(0) for r in runs]
    for i in range(4):
        for j in range(4):
            if i != j:
                ref = relative_strength(np.abs(Lasso(alpha=0.1).fit(std[i], std[j]).coef_).T)
                assert pairs[i, j] == pytest.approx(ref, abs=1e-12)
    medians = []
    for i in range(4):
        others = [pairs[j, i] for j in range(4) if j != i]
        assert got["udr_lasso"][i] == pytest.approx(np.median(others), abs=1e-12)
        medians.append((np.median(others), np.mean(others), np.median([pairs[i, j] for j in range(4) if j != i])))
    # the test has power: the median differs from the mean, and over j of UDR_ji from over j of UDR_ij
    assert max(abs(a - b) for a, b, _ in medians) > 0.01 and max(abs(a - c) for a, _, c in medians) > 0.01


def test_udr_counts_a_latent_above_disentanglement_libs_kl_threshold_of_0_01():
    from dislab.metrics.udr import udr

    m = _grid().astype(float)
    a = {"means": m, "kl": np.array([0.02, 1.0, 1.0, 1.0]), "eval_seed": 0}  # latent 0: KL 0.02 > 0.01
    b = {"means": m[:, [1, 0, 3, 2]], "kl": np.ones(4), "eval_seed": 0}
    assert [r["udr_spearman"] for r in udr([a, b])] == pytest.approx([1.0, 1.0], abs=1e-12)


@pytest.mark.parametrize("name, defaults", [
    ("irs", {"diff_quantile": 0.99, "num_bins": 20}),  # disentanglement_lib irs.py; factors discretised, 20 bins
    ("udr", {"kl_threshold": 0.01, "alpha": 0.1}),  # compute_udr_sklearn; lasso_correlation_matrix
    ("mig_chen", {"num_samples": 10_000}),  # rtqichen/beta-tcvae estimate_entropies
])
def test_metric_defaults_outside_the_study_list(name, defaults):
    import importlib
    import inspect

    params = inspect.signature(getattr(importlib.import_module(f"dislab.metrics.{name}"), name)).parameters
    assert {k: params[k].default for k in defaults} == defaults


# -- shared helpers ---------------------------------------------------------------------------------
def test_mutual_information_is_bitwise_scikit_learns():
    from sklearn.metrics import mutual_info_score

    from dislab.metrics.information import discrete_entropy, discrete_mutual_info, histogram_discretize

    rng = np.random.default_rng(0)
    for _ in range(10):
        n = int(rng.integers(2, 2000))
        f = rng.integers(0, int(rng.integers(1, 30)), (n, 3)) * 3 - 5
        c = histogram_discretize(rng.normal(size=(n, 4)) ** 3, 20)
        want = [[mutual_info_score(f[:, k], c[:, d]) for k in range(3)] for d in range(4)]
        assert np.array_equal(discrete_mutual_info(c, f), np.array(want))
        assert np.array_equal(discrete_entropy(f), [mutual_info_score(f[:, k], f[:, k]) for k in range(3)])


def test_explicitness_auc_is_scikit_learns_macro_auc():
    from sklearn.metrics import roc_auc_score

    from dislab.metrics.modularity import _auc

    rng = np.random.default_rng(0)
    for _ in range(10):
        n, k = int(rng.integers(5, 400)), int(rng.integers(2, 8))
        y, proba = rng.integers(0, k, n), np.round(rng.random((n, k)), 2)  # with ties
        onehot = (y[:, None] == np.arange(k)).astype(int)
        valid = onehot.any(0) & ~onehot.all(0)
        ref = roc_auc_score(onehot[:, valid], proba[:, valid])
        assert _auc(y, proba, np.arange(k)) == pytest.approx(ref, abs=1e-12)
