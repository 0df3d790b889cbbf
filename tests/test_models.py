"""The methods: exact reductions, their loss terms in the model, optimizer separation for the
discriminator methods, the capacity schedule across a resume, InfoGAN's code layout, sweep presets."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate

from conftest import compose
from dislab.data.datamodule import GroundTruthDataModule
from dislab.data.toy import Toy
from dislab.nets.mlp import MLP
from dislab.objectives.covariance import diag_off_diag_penalty, dip_covariance

X_SHAPE = (1, 16, 16)
ADVERSARIAL = ("factor_vae", "aae", "infogan")


def _model(name, *overrides, z_dim=None, x_shape=X_SHAPE, lr=1e-3, net=None):
    z_dim = z_dim or (10 if name == "infogan" else 4)  # InfoGAN's default layout takes 7 latents
    cfg = compose([f"model={name}", f"z_dim={z_dim}", f"lr={lr}", *overrides])
    torch.manual_seed(0)
    net = net or MLP(x_shape, z_dim, hidden=16)
    return instantiate(cfg.model, net=net, optimizer=instantiate(cfg.optimizer), dataset_size=1024)


def _x(n=16, seed=0):
    return torch.rand(n, *X_SHAPE, generator=torch.Generator().manual_seed(seed)).round()


def _fit(model, steps, ckpt_path=None, callbacks=()):
    trainer = pl.Trainer(max_steps=steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=list(callbacks))
    trainer.fit(model, GroundTruthDataModule(Toy(size=16), 8, seed=0), ckpt_path=ckpt_path, weights_only=True)
    return trainer


# -- closed-form reductions --------------------------------------------------------------------------
@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_beta_tcvae_with_unit_weights_is_exactly_the_vae(estimator):
    vae = _model("vae")
    tc = _model("beta_tcvae", "beta=1", "alpha=1", "gamma=1", f"estimator={estimator}")
    tc.net.load_state_dict(vae.net.state_dict())
    x = _x()
    torch.manual_seed(1)
    a = vae.losses(x)
    torch.manual_seed(1)
    b = tc.losses(x)
    assert torch.equal(a["loss"], b["loss"]) and torch.equal(a["kl"], b["kl"])


def test_ae_is_deterministic_and_unregularised():
    ae = _model("ae")
    x = _x()
    a, b = ae.losses(x), ae.losses(x)
    assert not ae.stochastic and torch.equal(a["loss"], b["loss"]) and torch.equal(a["loss"], a["recon"])


@pytest.mark.parametrize("name, factor", [("dip_vae_i", 10.0), ("dip_vae_ii", 1.0)])
def test_dip_regulariser_is_kl_plus_the_covariance_penalty(name, factor):
    m = _model(name, "lambda_od=3")
    assert m.lambda_od == 3 and m.lambda_d == factor * 3
    assert _model(name, "lambda_od=3", "lambda_d=5").lambda_d == 5
    mu, logvar = torch.randn(32, 4), torch.randn(32, 4)
    kl = torch.tensor(1.5)
    cov = dip_covariance(mu, logvar, name.rsplit("_", 1)[1])
    loss, logs = m.regularizer(kl, mu, logvar, mu)
    assert loss.item() == pytest.approx(1.5 + diag_off_diag_penalty(cov, 3, 3 * factor).item(), rel=1e-6)
    ref = torch.cov(mu.T, correction=0) + (torch.diag(logvar.exp().mean(0)) if name == "dip_vae_ii" else 0)
    assert logs["dip"].item() == pytest.approx(diag_off_diag_penalty(ref, 3, 3 * factor).item(), rel=1e-5)


# -- AnnealedVAE ------------------------------------------------------------------------------------
def test_annealed_capacity_is_linear_in_the_global_step_then_constant():
    m = _model("annealed_vae", "c_max=25", "c_steps=100000")
    assert [m.capacity(s) for s in (0, 50_000, 100_000, 300_000)] == [0.0, 12.5, 25.0, 25.0]
    assert m.gamma == 1000
    kl = torch.tensor(3.0)
    loss, logs = m.regularizer(kl, None, None, None)  # global_step is 0 without a trainer
    assert loss.item() == pytest.approx(1000 * 3.0) and logs["capacity"].item() == 0.0


class _Record(pl.Callback):
    def __init__(self):
        self.seen = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seen.append(float(pl_module.last_terms["capacity"]))


def test_annealed_capacity_continues_after_a_resume(tmp_path):
    first, rec = _model("annealed_vae", "c_max=10", "c_steps=10"), _Record()
    trainer = _fit(first, 3, callbacks=[rec])
    assert rec.seen == [0.0, 1.0, 2.0]
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    resumed, rec2 = _model("annealed_vae", "c_max=10", "c_steps=10"), _Record()
    trainer = _fit(resumed, 6, ckpt_path=tmp_path / "last.ckpt", callbacks=[rec2])
    assert rec2.seen == [3.0, 4.0, 5.0] and trainer.global_step == 6


# -- discriminator methods --------------------------------------------------------------------------
def _disc_params(m):
    return {id(p) for p in m.parameters()} - {id(p) for p in m.net.parameters()}


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_each_optimizer_holds_only_its_own_parameters(name):
    m = _model(name)
    opt_main, opt_d = m.configure_optimizers()
    main = {id(p) for g in opt_main.param_groups for p in g["params"]}
    disc = {id(p) for g in opt_d.param_groups for p in g["params"]}
    assert main == {id(p) for p in m.net.parameters()} and disc == _disc_params(m) and not main & disc
    assert opt_d.defaults["betas"][0] == 0.5


def _snapshot(params):
    return [p.detach().clone() for p in params]


def _changed(before, params):
    return [not torch.equal(a, b) for a, b in zip(before, params, strict=True)]


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_steps_count_iterations_and_each_optimizer_moves_only_its_network(name):
    # the VAE (generator) optimizer with lr 0: the network must not move, the discriminator must
    m = _model(name, lr=1e-3)
    m.optimizer_factory = partial(torch.optim.Adam, lr=0.0)
    net, disc = list(m.net.parameters()), [p for p in m.parameters() if id(p) in _disc_params(m)]
    n0, d0 = _snapshot(net), _snapshot(disc)
    trainer = _fit(m, 3)
    assert trainer.global_step == 3  # steps=N means N iterations, not N optimizer steps
    assert not any(_changed(n0, net)) and all(_changed(d0, disc))
    opt_main, opt_d = trainer.optimizers
    assert {int(s["step"]) for s in opt_d.state.values()} == {3}  # one discriminator step per iteration
    assert {int(s["step"]) for s in opt_main.state.values()} == {3}
    # and the other way round
    m = _model(name, lr=1e-3)
    m.disc_lr = 0.0
    net, disc = list(m.net.parameters()), [p for p in m.parameters() if id(p) in _disc_params(m)]
    n0, d0 = _snapshot(net), _snapshot(disc)
    _fit(m, 2)
    assert any(_changed(n0, net)) and not any(_changed(d0, disc))


@pytest.mark.parametrize("name", ["factor_vae", "infogan"])
def test_discriminator_and_its_optimizer_survive_a_resume(name, tmp_path):
    first = _model(name)
    _fit(first, 2).save_checkpoint(tmp_path / "last.ckpt")
    saved = {k: v.clone() for k, v in first.state_dict().items() if not k.startswith("net.")}
    resumed = _model(name)
    resumed.load_state_dict(torch.load(tmp_path / "last.ckpt", weights_only=True)["state_dict"])
    assert saved and all(torch.equal(v, resumed.state_dict()[k]) for k, v in saved.items())
    trainer = _fit(_model(name), 4, ckpt_path=tmp_path / "last.ckpt")
    assert trainer.global_step == 4 and {int(s["step"]) for s in trainer.optimizers[1].state.values()} == {4}


def test_factor_vae_discriminator_and_tc_term():
    m = _model("factor_vae", "gamma=7")
    linears = [x for x in m.discriminator if isinstance(x, torch.nn.Linear)]
    acts = [x for x in m.discriminator if isinstance(x, torch.nn.LeakyReLU)]
    assert [x.out_features for x in linears] == [1000] * 6 + [2] and len(acts) == 6
    assert all(a.negative_slope == 0.2 for a in acts)
    z = torch.randn(8, 4)
    loss, logs = m.regularizer(torch.tensor(2.0), z, z, z)
    logits = m.discriminator(z)
    assert logs["tc"].item() == pytest.approx((logits[:, 0] - logits[:, 1]).mean().item(), rel=1e-5)
    assert loss.item() == pytest.approx(2.0 + 7 * logs["tc"].item(), rel=1e-5)


def test_factor_vae_discriminator_loss_sends_no_gradient_to_the_encoder():
    m = _model("factor_vae")
    mu, _ = m.net.encode(_x())
    m.discriminator_loss(mu).backward()
    assert all(p.grad is None for p in m.net.parameters())
    assert all(p.grad is not None for p in m.discriminator.parameters())


def test_factor_vae_discriminator_estimates_tc_of_dependent_codes():
    """Trained alone, D's logit difference is large for dependent codes and ~0 for independent ones."""
    from dislab.models.factor_vae import discriminator

    def trained_tc(dependent: bool) -> float:
        torch.manual_seed(0)
        m = _model("factor_vae", z_dim=2)
        m.discriminator = discriminator(2, hidden=32, layers=3)
        opt = torch.optim.Adam(m.discriminator.parameters(), lr=1e-3)

        def codes():
            a = torch.randn(256, 1)
            return torch.cat([a, a + 0.1 * torch.randn(256, 1) if dependent else torch.randn(256, 1)], 1)

        for _ in range(200):
            opt.zero_grad()
            m.discriminator_loss(codes()).backward()
            opt.step()
        with torch.no_grad():
            return m.regularizer(torch.tensor(0.0), None, None, codes())[1]["tc"].item()

    true_tc = 0.5 * math.log(1 + 1 / 0.01)  # mutual information of (a, a + 0.1 eps): 2.31 nats
    assert 1.0 < trained_tc(True) < true_tc + 1.0
    assert abs(trained_tc(False)) < 0.2


def test_aae_matches_codes_to_the_prior_with_a_deterministic_encoder():
    m = _model("aae", "lam=3")
    assert not m.stochastic
    x = _x()
    a, b = m.losses(x), m.losses(x)
    assert torch.equal(a["loss"], b["loss"])  # z = mu: no sampling
    assert a["loss"].item() == pytest.approx(a["recon"].item() + 3 * a["adv"].item(), rel=1e-5)


# -- InfoGAN ----------------------------------------------------------------------------------------
def test_infogan_layout_and_inference():
    m = _model("infogan", "n_cat=2", "cat_dim=3", "n_cont=2", z_dim=10)
    assert (m.n_code, m.n_noise) == (8, 2)
    z, idx, cont = m.sample_latents(64)
    assert z.shape == (64, 10) and idx.shape == (64, 2) and cont.shape == (64, 2)
    blocks = z[:, :6].reshape(64, 2, 3)
    assert torch.equal(blocks.argmax(-1), idx) and torch.equal(blocks.sum(-1), torch.ones(64, 2))
    assert torch.equal(z[:, 6:8], cont) and cont.abs().max() <= 1
    x = _x().numpy()
    rep = m.represent(x)
    mean, logvar = m.encode(x)
    assert rep.shape == (16, 8) and mean.shape == (16, 10) and np.array_equal(mean[:, :8], rep)
    assert np.allclose(rep[:, :6].reshape(16, 2, 3).sum(-1), 1, atol=1e-6)
    assert (mean[:, 8:] == 0).all() and (logvar == 0).all()
    img = m.decode(mean)
    assert img.shape == (16, *X_SHAPE) and img.min() >= 0 and img.max() <= 1
    with pytest.raises(NotImplementedError):
        m.losses(torch.as_tensor(x))


def test_infogan_mi_terms_are_lower_bounds_of_the_code_entropy():
    m = _model("infogan", "n_cat=1", "cat_dim=5", "n_cont=1", z_dim=8)
    z, idx, cont = m.sample_latents(128)
    _, q = m.discriminate(torch.sigmoid(m.net.decode(z)))
    mi = m.mutual_information(q, idx, cont)
    assert mi["mi_cat"].item() <= math.log(5) and mi["mi_cont"].item() <= math.log(2) - 0.5 * math.log(2 * math.pi)
    assert mi["mi"].item() == pytest.approx(mi["mi_cat"].item() + mi["mi_cont"].item())


def test_infogan_losses_from_d_and_q_outputs_by_hand():
    """Chen et al. 2016 eq. 6, as openai/InfoGAN: D's loss -log D(x) - log(1 - D(G)) - lam MI, G's
    non-saturating -log D(G) - lam MI, the same MI lower bound in both (D's step does not move D here)."""
    m = _model("infogan", "lam=2.5", "n_cat=1", "cat_dim=3", "n_cont=2", z_dim=8)
    m.disc_lr = 0.0
    seen = []
    m.d_head.register_forward_hook(lambda mod, i, o: seen.append(o.detach().squeeze(1)))
    _fit(m, 1)
    both, fake = seen  # D's logits on [real; fake] (D's loss), then on fake again (G's loss)
    real, fake_d = both[: len(fake)], both[len(fake):]
    sp, t = torch.nn.functional.softplus, m.last_terms
    assert t["gan_d"].item() == pytest.approx((sp(-real).mean() + sp(fake_d).mean()).item(), rel=1e-5)
    assert t["gan_g"].item() == pytest.approx(sp(-fake).mean().item(), rel=1e-5)
    assert abs(t["mi"].item()) > 0.1  # so a flipped or dropped MI term shows
    assert t["disc_loss"].item() == pytest.approx(t["gan_d"].item() - 2.5 * t["mi"].item(), rel=1e-3)
    assert t["loss"].item() == pytest.approx(t["gan_g"].item() - 2.5 * t["mi"].item(), rel=1e-5)


def test_infogan_refuses_a_layout_larger_than_z_dim():
    from dislab.models.infogan import InfoGAN

    with pytest.raises(ValueError, match="z_dim >= n_cat\\*cat_dim \\+ n_cont = 11"):
        InfoGAN(net=MLP(X_SHAPE, 10, hidden=16), n_cat=2, cat_dim=4, n_cont=3)


def test_infogan_with_conv64_trains_a_step():
    from dislab.nets.conv64 import Conv64

    m = _model("infogan", net=Conv64((1, 64, 64), 10), z_dim=10)
    assert isinstance(m.body[0], torch.nn.Conv2d)
    trainer = pl.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(m, GroundTruthDataModule(Toy(size=64), 4, seed=0))
    assert trainer.global_step == 1 and math.isfinite(float(m.last_terms["mi"]))


def test_infogan_learns_the_toy_data():
    """1,000 iterations on 16x16 squares: G's images match the data's brightness and spread, and Q's
    codes carry factor information (MIG). Without batch norm in G it collapsed to black here."""
    from dislab.metrics.mig import mig

    m = _model("infogan", "n_cat=0", "n_cont=2", z_dim=6, net=MLP((1, 16, 16), 6, hidden=16))
    pl.Trainer(max_steps=1000, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False).fit(m, GroundTruthDataModule(Toy(size=16), 64, seed=0))
    data = Toy(size=16)
    fake, real = m.decode(m.sample_latents(512)[0].numpy()), data.sample_observations(512, np.random.default_rng(0))
    assert abs(fake.mean() - real.mean()) < 0.3 * real.mean() and fake.std(0).mean() > 0.5 * real.std(0).mean()
    assert mig(data, m.represent, np.random.default_rng(0), num_train=2000)["mig"] > 0.04
