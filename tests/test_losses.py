"""Every method's loss by hand, on fixed tensors: a stub network returns fixed posterior parameters and
logits, so each term (and each knob's effect on the loss) is computed here from the papers' formulas
with plain ``math`` and compared with the model's value. Fast: no trainer, tiny tensors.
References: Kingma & Welling 2014 (App. B); Higgins et al. 2017 eq. 4; Burgess et al. 2018 eq. 8;
Chen et al. 2018 eq. 4, App. C (MWS / MSS); Kim & Mnih 2018 eq. 2-3, Alg. 1; Makhzani et al. 2016
Sec. 2; Chen et al. 2016 eq. 6; and disentanglement_lib ``methods/unsupervised/vae.py``."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from dislab.models.aae import AAE
from dislab.models.annealed_vae import AnnealedVAE
from dislab.models.beta_tcvae import BetaTCVAE
from dislab.models.beta_vae import BetaVAE
from dislab.models.factor_vae import FactorVAE
from dislab.models.vae import VAE

MU = torch.tensor([[0.5, -1.0], [0.0, 2.0], [-0.3, 0.1]], dtype=torch.float64)
LOGVAR = torch.tensor([[0.0, math.log(4.0)], [-1.0, 0.5], [0.2, -2.0]], dtype=torch.float64)
Z = torch.tensor([[0.7, -0.2], [0.1, 1.5], [-1.0, 0.3]], dtype=torch.float64)
LOGITS = torch.tensor([[[[0.0, 2.0]]], [[[-1.0, 0.5]]], [[[1.5, -0.5]]]], dtype=torch.float64)
X = torch.tensor([[[[1.0, 0.0]]], [[[0.25, 1.0]]], [[[0.0, 1.0]]]], dtype=torch.float64)


class Stub(nn.Module):
    """encode -> fixed (mu, logvar); decode records z and returns fixed logits."""

    def __init__(self):
        super().__init__()
        self.x_shape, self.z_dim = (1, 1, 2), 2
        self.w = nn.Parameter(torch.zeros((), dtype=torch.float64))

    def encode(self, x):
        return MU + self.w, LOGVAR + self.w

    def decode(self, z):
        self.z = z
        return LOGITS + self.w


def _kl(m, lv):  # KL(N(m, e^lv) || N(0, 1)), Kingma & Welling App. B
    return 0.5 * (m * m + math.exp(lv) - lv - 1)


def _log_normal(z, m, lv):
    return -0.5 * (math.log(2 * math.pi) + lv + (z - m) ** 2 / math.exp(lv))


def _sig(t):
    return 1 / (1 + math.exp(-t))


def _softplus(t):  # -log sigmoid(-t)
    return math.log1p(math.exp(t))


KL = sum(_kl(MU[i, d].item(), LOGVAR[i, d].item()) for i in range(3) for d in range(2)) / 3
RECON = -sum(x * math.log(_sig(t)) + (1 - x) * math.log(1 - _sig(t))
             for t, x in zip(LOGITS.flatten().tolist(), X.flatten().tolist(), strict=True)) / 3


def _model(cls, **kw):
    torch.manual_seed(0)
    return cls(net=Stub(), dataset_size=5, **kw).double()


# -- VAE ----------------------------------------------------------------------------------------------
def test_vae_loss_terms_and_reparameterisation_by_hand():
    m = _model(VAE)
    torch.manual_seed(1)
    t = m.losses(X)
    torch.manual_seed(1)
    eps = torch.randn(MU.shape, dtype=torch.float64)
    assert torch.allclose(m.net.z, MU + eps * (0.5 * LOGVAR).exp())  # z = mu + sigma * eps, sigma = e^(lv/2)
    assert t["kl"].item() == pytest.approx(KL, rel=1e-12) and t["recon"].item() == pytest.approx(RECON, rel=1e-12)
    assert t["loss"].item() == pytest.approx(RECON + KL, rel=1e-12)
    assert t["elbo"].item() == pytest.approx(-(RECON + KL), rel=1e-12)


def test_beta_vae_weights_the_kl_by_beta():
    t = _model(BetaVAE, beta=3.0).losses(X)
    assert t["loss"].item() == pytest.approx(RECON + 3.0 * KL, rel=1e-12)


# -- AnnealedVAE --------------------------------------------------------------------------------------
@pytest.mark.parametrize("step, kl, expected", [
    (0, 3.0, 1000 * 3.0),                 # C = 0
    (50_000, 3.0, 1000 * (12.5 - 3.0)),   # C = 25 * 0.5 = 12.5 > KL: |KL - C|, not KL - C
    (50_000, 20.0, 1000 * (20.0 - 12.5)),
    (250_000, 30.0, 1000 * (30.0 - 25.0)),  # held at c_max after c_steps
])
def test_annealed_vae_is_gamma_times_the_distance_to_the_capacity(monkeypatch, step, kl, expected):
    monkeypatch.setattr(AnnealedVAE, "global_step", property(lambda self: step))
    m = _model(AnnealedVAE, gamma=1000.0, c_max=25.0, c_steps=100_000)
    loss, logs = m.regularizer(torch.tensor(kl, dtype=torch.float64), MU, LOGVAR, Z)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert logs["capacity"].item() == pytest.approx(25.0 * min(1.0, step / 100_000))


# -- beta-TCVAE ---------------------------------------------------------------------------------------
def _log_qz_by_hand(i, weights, dims=(0, 1)):
    """log sum_j w_ij prod_{d in dims} q(z_id | x_j) over the batch (mu, logvar rows j)."""
    return math.log(sum(w * math.exp(sum(_log_normal(Z[i, d].item(), MU[j, d].item(), LOGVAR[j, d].item())
                                         for d in dims)) for j, w in enumerate(weights)))


def _decomposition_by_hand(weights):
    """Batch means of (MI, TC, dwKL) from log q(z_i|x_i), log q(z_i), sum_d log q(z_id), log p(z_i)."""
    mi = tc = dw = 0.0
    for i in range(3):
        w = weights(i)
        log_qz_x = sum(_log_normal(Z[i, d].item(), MU[i, d].item(), LOGVAR[i, d].item()) for d in range(2))
        log_qz = _log_qz_by_hand(i, w)
        log_qzd = sum(_log_qz_by_hand(i, w, (d,)) for d in range(2))
        log_pz = sum(_log_normal(Z[i, d].item(), 0.0, 0.0) for d in range(2))
        mi, tc, dw = mi + log_qz_x - log_qz, tc + log_qz - log_qzd, dw + log_qzd - log_pz
    return mi / 3, tc / 3, dw / 3


N, M = 5, 3
WEIGHTS = {
    "mws": lambda i: [1 / (N * M)] * M,  # Chen et al. eq. S9: log q(z_i) ~= log sum_j q(z_i|x_j) - log(N M)
    # App. C.2: z_i's own point with weight 1/N, the other N - 1 points estimated by the other M - 1
    "mss": lambda i: [1 / N if j == i else (N - 1) / (N * (M - 1)) for j in range(M)],
}


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_beta_tcvae_weights_mi_tc_and_dwkl_by_alpha_beta_gamma(estimator):
    mi, tc, dw = _decomposition_by_hand(WEIGHTS[estimator])
    kl = torch.tensor(1.7, dtype=torch.float64)
    for alpha, beta, gamma in ((1.0, 1.0, 1.0), (1.0, 6.0, 1.0), (2.5, 1.0, 1.0), (1.0, 1.0, 4.0), (0.5, 3.0, 2.0)):
        m = _model(BetaTCVAE, alpha=alpha, beta=beta, gamma=gamma, estimator=estimator)
        loss, logs = m.regularizer(kl, MU, LOGVAR, Z)
        assert loss.item() == pytest.approx(1.7 + (alpha - 1) * mi + (beta - 1) * tc + (gamma - 1) * dw, rel=1e-10)
        assert set(logs) == {f"mi_{estimator}", f"tc_{estimator}", f"dwkl_{estimator}"}
        got = [logs[f"{k}_{estimator}"].item() for k in ("mi", "tc", "dwkl")]
        assert got == pytest.approx([mi, tc, dw], rel=1e-10)


def test_beta_tcvae_tc_is_disentanglement_libs_plus_its_dropped_constant():
    """disentanglement_lib's total_correlation: mean_i [logsumexp_j sum_d log q(z_id|x_j) - sum_d logsumexp_j
    log q(z_id|x_j)] with the constant (D - 1) log(N M) dropped (its docstring)."""
    pair = [[[_log_normal(Z[i, d].item(), MU[j, d].item(), LOGVAR[j, d].item()) for d in range(2)]
             for j in range(3)] for i in range(3)]
    lse = lambda v: math.log(sum(math.exp(a) for a in v))
    dlib = sum(lse([sum(pair[i][j]) for j in range(3)]) - sum(lse([pair[i][j][d] for j in range(3)]) for d in range(2))
               for i in range(3)) / 3
    _, logs = _model(BetaTCVAE, estimator="mws").regularizer(torch.tensor(0.0), MU, LOGVAR, Z)
    assert logs["tc_mws"].item() == pytest.approx(dlib + (2 - 1) * math.log(N * M), rel=1e-10)


def test_beta_tcvae_n_is_the_training_set_size():
    from hydra.utils import instantiate

    from conftest import compose
    from dislab.load import build_model

    cfg = compose(["model=beta_tcvae", "dataset=toy", "net=mlp", "+net.hidden=8"])
    data = instantiate(cfg.dataset)
    assert build_model(cfg, data).dataset_size == len(data) == 1024


def test_mss_is_unbiased_by_enumerating_every_batch_of_a_tiny_data_set():
    """Data set of 4 points, batches of 3 holding x_0 first and two others drawn without replacement:
    the MSS estimate of q(z_0) averaged over all 6 such batches is exactly (1/4) sum_n q(z_0|x_n)."""
    from dislab.objectives.gaussian import log_qz_terms

    g = torch.Generator().manual_seed(3)
    mu, lv = torch.randn(4, 2, generator=g, dtype=torch.float64), torch.randn(4, 2, generator=g, dtype=torch.float64)
    z0 = torch.tensor([0.3, -0.4], dtype=torch.float64)
    exact = sum(math.exp(sum(_log_normal(z0[d].item(), mu[n, d].item(), lv[n, d].item()) for d in range(2)))
                for n in range(4)) / 4
    ests = []
    for others in itertools.permutations(range(1, 4), 2):
        idx = torch.tensor([0, *others])
        z = torch.cat([z0[None], mu[list(others)]])  # rows 1-2 of z are not scored
        ests.append(log_qz_terms(z, mu[idx], lv[idx], dataset_size=4, estimator="mss")[1][0].exp().item())
    assert len(ests) == 6 and sum(ests) / 6 == pytest.approx(exact, rel=1e-12)


# -- FactorVAE ----------------------------------------------------------------------------------------
def _ce(logits, target):  # -log softmax(logits)[target]
    return math.log(sum(math.exp(v) for v in logits)) - logits[target]


def test_factor_vae_loss_and_discriminator_loss_by_hand(monkeypatch):
    m = _model(FactorVAE, gamma=7.0)
    with torch.no_grad():
        logits = m.discriminator(Z).tolist()
        tc = sum(a - b for a, b in logits) / 3  # log D / (1 - D), class 0 = "from q(z)"
        loss, logs = m.regularizer(torch.tensor(1.5, dtype=torch.float64), MU, LOGVAR, Z)
        assert logs["tc"].item() == pytest.approx(tc, rel=1e-10)
        assert loss.item() == pytest.approx(1.5 + 7.0 * tc, rel=1e-10)
        # D: cross-entropy, codes of q(z) as class 0 and their permutation as class 1, halves weighted equally
        perm = torch.tensor([[0.1, 0.3], [-1.0, -0.2], [0.7, 1.5]], dtype=torch.float64)  # columns permuted apart
        monkeypatch.setattr("dislab.models.factor_vae.permute_dims", lambda z, u=None: perm)
        fake = m.discriminator(perm).tolist()
        expected = 0.5 * sum(_ce(v, 0) for v in logits) / 3 + 0.5 * sum(_ce(v, 1) for v in fake) / 3
        assert m.discriminator_loss(Z).item() == pytest.approx(expected, rel=1e-10)


# -- AAE ----------------------------------------------------------------------------------------------
def test_aae_fools_its_discriminator_and_the_discriminator_tells_prior_from_codes():
    m = _model(AAE, lam=3.0)
    with torch.no_grad():
        d_codes = m.discriminator(MU).squeeze(1).tolist()
        t = m.losses(X)
        assert torch.equal(m.net.z, MU)  # deterministic encoder: z = mu
        adv = sum(_softplus(-v) for v in d_codes) / 3  # -log D(z): the encoder wants D to say "prior"
        assert t["adv"].item() == pytest.approx(adv, rel=1e-10)
        assert t["loss"].item() == pytest.approx(RECON + 3.0 * adv, rel=1e-10)
        torch.manual_seed(5)
        got = m.discriminator_loss(MU).item()
        torch.manual_seed(5)
        prior = torch.randn(MU.shape, dtype=torch.float64)
        d_prior = m.discriminator(prior).squeeze(1).tolist()
        # -log D(prior sample) - log(1 - D(code)), batch means
        expected = sum(_softplus(-v) for v in d_prior) / 3 + sum(_softplus(v) for v in d_codes) / 3
        assert got == pytest.approx(expected, rel=1e-10)
