"""Loss terms against closed forms and brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from dislab.objectives.gaussian import gaussian_kl, gaussian_log_density, kl_decomposition, log_qz_terms
from dislab.objectives.recon import reconstruction_loss

torch.manual_seed(0)


def test_gaussian_kl_matches_torch_distributions():
    mu, logvar = torch.randn(7, 5), torch.randn(7, 5)
    ref = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0))
    assert torch.allclose(gaussian_kl(mu, logvar), ref, atol=1e-6)


def test_log_density_matches_torch_distributions():
    z, mu, logvar = torch.randn(6, 3), torch.randn(6, 3), torch.randn(6, 3)
    assert torch.allclose(gaussian_log_density(z, mu, logvar), Normal(mu, (0.5 * logvar).exp()).log_prob(z), atol=1e-5)


def test_bernoulli_recon_by_hand():
    """disentanglement_lib's bernoulli_loss: sum over pixels of -[x log p + (1 - x) log(1 - p)], batch mean;
    on a 2-pixel, 2-example case by hand, with a non-binary target."""
    logits = torch.tensor([[[[0.0, 2.0]]], [[[-1.0, 0.5]]]])  # (2, 1, 1, 2)
    x = torch.tensor([[[[1.0, 0.0]]], [[[0.25, 1.0]]]])
    sig = lambda t: 1 / (1 + math.exp(-t))
    per = [-(math.log(sig(0.0)) + math.log(1 - sig(2.0))),
           -(0.25 * math.log(sig(-1.0)) + 0.75 * math.log(1 - sig(-1.0)) + math.log(sig(0.5)))]
    assert reconstruction_loss(logits, x).item() == pytest.approx(sum(per) / 2, rel=1e-6)


def test_gaussian_recon_is_disentanglement_libs_l2_loss_by_hand():
    """l2_loss: sum over pixels and channels of (x - sigmoid(logits))^2, averaged over the batch, no constant
    and no 1/2 (= -log N(x; sigmoid(logits), 1/2) - P/2 log pi)."""
    logits = torch.tensor([[[[0.0, math.log(3.0)]], [[0.0, 0.0]]], [[[-math.log(3.0), 0.0]], [[0.0, 0.0]]]])
    x = torch.tensor([[[[1.0, 0.0]], [[0.5, 0.5]]], [[[0.0, 1.0]], [[0.5, 0.5]]]])  # (2, 2, 1, 2)
    # sigmoid: 0.5, 0.75 | 0.25, 0.5; errors: 0.5, 0.75 | 0.25, 0.5 (second channel exact)
    expected = ((0.25 + 0.5625) + (0.0625 + 0.25)) / 2
    assert reconstruction_loss(logits, x, "gaussian").item() == pytest.approx(expected, rel=1e-6)
    lx, xx = torch.randn(3, 1, 4, 4), torch.rand(3, 1, 4, 4)
    nll = -Normal(torch.sigmoid(lx), math.sqrt(0.5)).log_prob(xx).sum() / 3 - 16 / 2 * math.log(math.pi)
    assert reconstruction_loss(lx, xx, "gaussian").item() == pytest.approx(nll.item(), rel=1e-5)


def test_unknown_recon_is_refused():
    with pytest.raises(ValueError, match="allowed: bernoulli, gaussian"):
        reconstruction_loss(torch.zeros(1, 1), torch.zeros(1, 1), "laplace")


def _brute_force(z, mu, logvar):
    """log q(z_i) = log 1/N sum_n q(z_i|x_n) over the whole data set, and likewise per dimension."""
    n = mu.shape[0]
    pair = gaussian_log_density(z[:, None], mu[None], logvar[None])  # (B, N, D)
    log_qz = torch.logsumexp(pair.sum(2), 1) - math.log(n)
    log_qzd = (torch.logsumexp(pair, 1) - math.log(n)).sum(1)
    return log_qz, log_qzd


def test_mws_is_the_published_lower_bound():
    """Chen et al.'s MWS, log q(z_i) ~= logsumexp_j log q(z_i|x_j) - log(N M), is a lower bound:
    its importance weight p(B)/r(B|n) = 1/N keeps only the batches that contain x_i. With the whole
    data set as the batch (M = N) it sits exactly log N below the brute-force value."""
    n = 32
    mu, logvar = torch.randn(n, 3), torch.randn(n, 3) * 0.3
    z = mu + torch.randn(n, 3) * (0.5 * logvar).exp()
    _, log_qz, log_qzd, _ = log_qz_terms(z, mu, logvar, dataset_size=n, estimator="mws")
    bf_qz, bf_qzd = _brute_force(z, mu, logvar)
    assert torch.allclose(log_qz, bf_qz - math.log(n), atol=1e-5)
    assert torch.allclose(log_qzd, bf_qzd - 3 * math.log(n), atol=1e-5)


def test_mss_is_unbiased_for_q_z_against_brute_force():
    """MSS: E over random batches containing x_i of the estimate of q(z_i) equals the exact q(z_i)."""
    g = torch.Generator().manual_seed(1)
    n, m, d = 40, 8, 2
    mu, logvar = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g) * 0.3
    z0 = mu[0] + torch.randn(d, generator=g) * (0.5 * logvar[0]).exp()
    exact = _brute_force(z0[None], mu, logvar)[0].exp().item()
    est = []
    for _ in range(3000):
        others = torch.randperm(n - 1, generator=g)[: m - 1] + 1
        idx = torch.cat([torch.tensor([0]), others])
        z = torch.cat([z0[None], mu[others]])  # only row 0's estimate is used
        _, log_qz, _, _ = log_qz_terms(z, mu[idx], logvar[idx], dataset_size=n, estimator="mss")
        est.append(log_qz[0].exp().item())
    assert np.mean(est) == pytest.approx(exact, rel=0.03)


def test_decomposition_sums_to_the_sampled_kl():
    """MI + TC + dwKL = E[log q(z|x) - log p(z)] term by term, for any estimator."""
    mu, logvar = torch.randn(16, 4), torch.randn(16, 4) * 0.2
    z = mu + torch.randn(16, 4) * (0.5 * logvar).exp()
    d = kl_decomposition(z, mu, logvar, dataset_size=1000, estimator="mss")
    log_qz_x = gaussian_log_density(z, mu, logvar).sum(1)
    log_pz = Normal(0.0, 1.0).log_prob(z).sum(1)
    assert (d["mi"] + d["tc"] + d["dwkl"]).item() == pytest.approx((log_qz_x - log_pz).mean().item(), abs=1e-4)
