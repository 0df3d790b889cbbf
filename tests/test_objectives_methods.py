"""Loss terms of the methods against closed forms, hand-computed cases and brute force."""

from __future__ import annotations

import math

import pytest
import torch

from dislab.objectives.adversarial import density_ratio_tc, permute_dims
from dislab.objectives.covariance import covariance_of_means, diag_off_diag_penalty, dip_covariance
from dislab.objectives.gaussian import gaussian_kl, kl_decomposition, log_qz_terms
from dislab.objectives.information import categorical_mi_lower_bound, uniform_gaussian_mi_lower_bound


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# -- DIP-VAE ---------------------------------------------------------------------------------------
def test_dip_i_covariance_is_the_biased_covariance_of_the_means_over_the_batch():
    g = _gen()
    mu, logvar = torch.randn(32, 4, generator=g) * 3 + 1, torch.randn(32, 4, generator=g)
    ref = torch.cov(mu.T, correction=0)
    assert torch.allclose(covariance_of_means(mu), ref, atol=1e-5)
    assert torch.allclose(dip_covariance(mu, logvar, "i"), ref, atol=1e-5)


def test_dip_ii_adds_the_mean_posterior_variance_to_the_diagonal_only():
    g = _gen(1)
    mu, logvar = torch.randn(16, 3, generator=g), torch.randn(16, 3, generator=g)
    diff = dip_covariance(mu, logvar, "ii") - torch.cov(mu.T, correction=0)
    assert torch.allclose(diff, torch.diag(logvar.exp().mean(0)), atol=1e-5)
    assert (diff - torch.diag(torch.diagonal(diff))).abs().max() < 1e-6  # no scalar added to every entry
    with pytest.raises(ValueError, match="allowed: i, ii"):
        dip_covariance(mu, logvar, "iii")


def test_dip_penalty_on_a_hand_computed_2x2_case():
    cov = torch.tensor([[2.0, 0.5], [0.5, 0.25]])
    # off-diagonal: 0.5^2 + 0.5^2 = 0.5; diagonal: (2 - 1)^2 + (0.25 - 1)^2 = 1.5625
    assert diag_off_diag_penalty(cov, 10.0, 100.0).item() == pytest.approx(10 * 0.5 + 100 * 1.5625)
    assert diag_off_diag_penalty(torch.eye(2), 10.0, 100.0).item() == 0.0


def test_dip_penalty_from_batch_means_by_hand():
    mu = torch.tensor([[1.0, 0.0], [-1.0, 2.0]])  # centred: [[1, -1], [-1, 1]] -> cov [[1, -1], [-1, 1]]
    cov = dip_covariance(mu, torch.zeros_like(mu), "i")
    assert torch.allclose(cov, torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))
    assert diag_off_diag_penalty(cov, 3.0, 7.0).item() == pytest.approx(3.0 * 2)
    cov2 = dip_covariance(mu, torch.zeros_like(mu), "ii")  # + E[diag exp(0)] = + I
    assert diag_off_diag_penalty(cov2, 3.0, 7.0).item() == pytest.approx(3.0 * 2 + 7.0 * 2)


# -- FactorVAE -------------------------------------------------------------------------------------
def test_permutation_keeps_every_marginal_and_breaks_the_dependence():
    g = _gen(2)
    a = torch.randn(4096, 1, generator=g)
    z = torch.cat([a, a + 0.1 * torch.randn(4096, 1, generator=g), -a, torch.randn(4096, 1, generator=g)], 1)
    assert torch.corrcoef(z.T)[0, 1] > 0.99
    p = permute_dims(z, generator=_gen(3))
    for d in range(z.shape[1]):  # each column is a permutation of the original column
        assert torch.equal(p[:, d].sort().values, z[:, d].sort().values)
    off = torch.corrcoef(p.T) - torch.eye(4)
    assert off.abs().max() < 0.06  # ~ 1/sqrt(4096) scale: uncorrelated
    assert not torch.equal(p[:, 0], z[:, 0]) and not torch.equal(p[:, 0], p[:, 1])


def test_permutation_is_across_the_batch_not_within_a_sample():
    z = torch.arange(12.0).reshape(6, 2) * torch.tensor([1.0, 100.0])  # column 1 values are multiples of 100
    p = permute_dims(z, generator=_gen(4))
    assert set(p[:, 0].tolist()) == set(z[:, 0].tolist()) and set(p[:, 1].tolist()) == set(z[:, 1].tolist())


def test_density_ratio_tc_is_the_logit_difference():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.5]])
    assert density_ratio_tc(logits).item() == pytest.approx((3.0 + 0.0) / 2)
    probs = logits.softmax(1)[:, 0]  # log D / (1 - D) with D the probability of "from q(z)"
    assert density_ratio_tc(logits).item() == pytest.approx(torch.log(probs / (1 - probs)).mean().item(), rel=1e-5)


# -- InfoGAN ---------------------------------------------------------------------------------------
def test_categorical_mi_bound_never_exceeds_the_code_entropy():
    g = _gen(5)
    for k, n in ((2, 1), (3, 1), (10, 2)):
        idx = torch.randint(k, (64, n), generator=g)
        for scale in (0.1, 1.0, 10.0, 100.0):
            logits = torch.randn(64, n, k, generator=g) * scale
            assert categorical_mi_lower_bound(logits, idx).item() <= n * math.log(k) + 1e-6
        perfect = torch.nn.functional.one_hot(idx, k).float() * 50  # Q certain and right: bound -> H(c)
        assert categorical_mi_lower_bound(perfect, idx).item() == pytest.approx(n * math.log(k), abs=1e-4)
        uniform = torch.zeros(64, n, k)  # Q uninformative: bound = 0
        assert categorical_mi_lower_bound(uniform, idx).item() == pytest.approx(0.0, abs=1e-6)


def test_continuous_mi_bound_closed_form():
    c = torch.rand(32, 3, generator=_gen(6)) * 2 - 1
    # mean = c, unit variance: D (log 2 - 0.5 log 2 pi), the largest value a unit-variance Q reaches
    best = 3 * (math.log(2) - 0.5 * math.log(2 * math.pi))
    assert uniform_gaussian_mi_lower_bound(c, c).item() == pytest.approx(best)
    mean = c + 0.5
    ref = 3 * math.log(2) + torch.distributions.Normal(mean, 1.0).log_prob(c).sum(1).mean().item()
    assert uniform_gaussian_mi_lower_bound(mean, c).item() == pytest.approx(ref, rel=1e-5)


# -- beta-TCVAE: the decomposition against brute force -----------------------------------------------
def _brute(z, mu, logvar):
    n = mu.shape[0]
    pair = torch.distributions.Normal(mu[None], (0.5 * logvar[None]).exp()).log_prob(z[:, None])  # (B, N, D)
    return torch.logsumexp(pair.sum(2), 1) - math.log(n), (torch.logsumexp(pair, 1) - math.log(n)).sum(1)


def test_mss_with_the_whole_data_set_as_the_batch_is_the_brute_force_log_q():
    g = _gen(7)
    n = 24
    mu, logvar = torch.randn(n, 3, generator=g).double(), (torch.randn(n, 3, generator=g) * 0.3).double()
    z = mu + torch.randn(n, 3, generator=g).double() * (0.5 * logvar).exp()
    _, log_qz, log_qzd, _ = log_qz_terms(z, mu, logvar, dataset_size=n, estimator="mss")
    bf_qz, bf_qzd = _brute(z, mu, logvar)
    assert torch.allclose(log_qz, bf_qz, atol=1e-9) and torch.allclose(log_qzd, bf_qzd, atol=1e-9)


def test_mi_plus_tc_plus_dwkl_is_the_average_kl_by_brute_force():
    """A data set of N points; every log q(z) is computed over all of it (MSS with M = N, exact).
    Averaged over z ~ q(z|x), MI + TC + dwKL = E_x KL(q(z|x) || p(z)), the closed form."""
    g = _gen(8)
    n, d, reps = 48, 3, 300
    mu, logvar = torch.randn(n, d, generator=g).double(), (torch.randn(n, d, generator=g) * 0.5 - 1).double()
    terms = []
    for _ in range(reps):
        z = mu + torch.randn(n, d, generator=g).double() * (0.5 * logvar).exp()
        dec = kl_decomposition(z, mu, logvar, dataset_size=n, estimator="mss")
        terms.append(torch.stack([dec["mi"], dec["tc"], dec["dwkl"]]))
    terms = torch.stack(terms)  # (reps, 3)
    total = terms.sum(1)
    kl = gaussian_kl(mu, logvar).sum(1).mean().item()
    se = total.std().item() / math.sqrt(reps)
    assert abs(total.mean().item() - kl) < 4 * se + 1e-3, (total.mean().item(), kl, se)
    mi, tc, dwkl = terms.mean(0).tolist()
    assert 0 < mi <= math.log(n) and tc > -4 * se and dwkl > 0  # MI of an N-point data set is at most log N
