"""The weakly-supervised methods' loss terms (``dislab.objectives.weak``) on hand-computed cases, and
each method's loss on pairs against an independent restatement of disentanglement_lib's
``weak_vae.py`` (which latents are averaged, arithmetic mean vs product, the pair's halves, beta);
a training run whose pairs are painted equals the numpy run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from conftest import compose
from dislab.nets.mlp import MLP
from dislab.objectives.weak import adaptive_changed, arithmetic_mean, labelled_changed, pair_kl, product_of_experts

WEAK = ("ada_gvae", "ada_ml_vae", "group_vae", "ml_vae")
T = torch.tensor


def test_pair_kl_is_kl_of_the_first_posterior_from_the_second():
    # KL(N(0, 1) || N(2, 3)) = (1/3 + 4/3 - 1 + ln 3) / 2; the other way: (3 + 4 - 1 - ln 3) / 2
    mu1, lv1, mu2, lv2 = T([[0.0]]), T([[0.0]]), T([[2.0]]), T([[math.log(3)]])
    assert pair_kl(mu1, lv1, mu2, lv2).item() == pytest.approx((2 / 3 + math.log(3)) / 2, rel=1e-6)
    assert pair_kl(mu2, lv2, mu1, lv1).item() == pytest.approx((6 - math.log(3)) / 2, rel=1e-6)
    assert pair_kl(mu1, lv1, mu1, lv1).item() == 0


def test_adaptive_threshold_is_the_midpoint_of_the_smallest_and_largest_kl():
    # tau = (max + min) / 2 per row; a latent AT tau is not averaged (dlib's upper bin starts there)
    assert adaptive_changed(T([[0.0, 1.0, 2.0], [1.0, 2.0, 4.0]])).tolist() == [[False, True, True],
                                                                               [False, False, True]]
    # tau = 5: not the mean 2.8 (which would keep 4 too)
    assert adaptive_changed(T([[0.0, 0.0, 0.0, 4.0, 10.0]])).tolist() == [[False, False, False, False, True]]
    assert adaptive_changed(T([[3.0, 3.0, 3.0]])).tolist() == [[False, False, False]]  # 0/0: all averaged
    d = torch.rand(64, 10, generator=torch.Generator().manual_seed(0))
    assert torch.equal(adaptive_changed(2 * d), adaptive_changed(d))  # dlib's delta is twice the KL
    tau = (d.max(1, keepdim=True).values + d.min(1, keepdim=True).values) / 2
    assert torch.equal(adaptive_changed(d), d >= tau)


def test_averages_arithmetic_for_gvae_and_the_product_for_ml_vae():
    mu1, lv1, mu2, lv2 = T([0.0]), T([0.0]), T([2.0]), T([math.log(3)])  # N(0, 1) and N(2, 3)
    m, lv = arithmetic_mean(mu1, lv1, mu2, lv2)
    assert m.item() == pytest.approx(1.0) and lv.exp().item() == pytest.approx(2.0, rel=1e-6)
    m, lv = product_of_experts(mu1, lv1, mu2, lv2)  # precision-weighted mean (0/1 + 2/3) / (1 + 1/3) = 0.5
    assert m.item() == pytest.approx(0.5, rel=1e-6) and lv.exp().item() == pytest.approx(1.5, rel=1e-6)  # 2*3/4
    same = product_of_experts(T([0.7]), T([-1.0]), T([0.7]), T([-1.0]))
    assert same[0].item() == pytest.approx(0.7) and same[1].item() == pytest.approx(-1.0)  # equal experts stay


def test_labelled_latents_are_the_changed_factors():
    changed = T([[True, False, False], [False, True, True]])
    assert labelled_changed(changed, 5).tolist() == [[True, False, False, False, False],
                                                     [False, True, True, False, False]]
    with pytest.raises(ValueError, match=r"z_dim >= the number of factors \(3\); got z_dim=2"):
        labelled_changed(changed, 2)


def _model(name, beta=3.0, z_dim=3):
    cfg = compose([f"model={name}", f"z_dim={z_dim}", f"beta={beta}"])
    torch.manual_seed(0)
    return instantiate(cfg.model, net=MLP((1, 8, 8), z_dim, hidden=16), optimizer=instantiate(cfg.optimizer))


def test_the_adaptive_mask_comes_from_kl_of_the_first_image_s_posterior_and_applies_to_both():
    """Latent 0: q1 = N(0, 1), q2 = N(0, e^-4): KL(q1||q2) = 24.8, KL(q2||q1) = 1.5; latent 1: means 3
    apart, KL 4.5 both ways; latent 2: equal. Forward: tau = 12.4, only latent 0 differs (reverse:
    tau = 2.25, latent 1 would)."""
    mu = T([[[0.0, 0.0, 0.5], [0.0, 3.0, 0.5]]])
    lv = T([[[0.0, 0.0, -1.0], [-4.0, 0.0, -1.0]]])
    for name, average in (("ada_gvae", arithmetic_mean), ("ada_ml_vae", product_of_experts)):
        m, v, shared = _model(name).pair_posteriors(mu, lv, None)
        am, av = average(mu[:, 0], lv[:, 0], mu[:, 1], lv[:, 1])
        assert torch.equal(m[:, :, 0], mu[:, :, 0]) and torch.equal(v[:, :, 0], lv[:, :, 0])  # kept, each its own
        for i in (0, 1):  # both images take the average on latents 1 and 2
            assert torch.equal(m[:, i, 1:], am[:, 1:]) and torch.equal(v[:, i, 1:], av[:, 1:])
        assert shared.item() == 2


def _restated(name, model, x, changed, beta, seed):
    """dlib's ``model_fn`` restated: encode each image, average the shared latents, one sample each,
    recon and KL as halves of the two images' batch means; z noise as the model draws it."""
    b = len(x)
    (mu1, lv1), (mu2, lv2) = model.net.encode(x[:, 0]), model.net.encode(x[:, 1])
    if name.startswith("ada"):
        v1, v2 = lv1.exp(), lv2.exp()
        delta = v1 / v2 + (mu2 - mu1) ** 2 / v2 - 1 + lv2 - lv1  # dlib compute_kl
        hi, lo = delta.max(1, keepdim=True).values, delta.min(1, keepdim=True).values
        keep = (delta >= (hi + lo) / 2) & (hi > lo)  # equal images: all averaged (TF's 0/0 bin is never 1)
    else:
        keep = torch.zeros_like(mu1, dtype=torch.bool)
        keep[:, :changed.shape[1]] = changed
    v1, v2 = lv1.exp(), lv2.exp()
    if name in ("ada_gvae", "group_vae"):
        am, av = 0.5 * mu1 + 0.5 * mu2, 0.5 * v1 + 0.5 * v2
    else:
        av = 2 * v1 * v2 / (v1 + v2)
        am = (mu1 / v1 + mu2 / v2) * av * 0.5
    post = [(torch.where(keep, m, am), torch.where(keep, v, av)) for m, v in ((mu1, v1), (mu2, v2))]
    torch.manual_seed(seed)
    eps = torch.randn(b, 2, mu1.shape[1])
    recon = kl = 0
    for i, (m, v) in enumerate(post):
        logits = model.net.decode(m + eps[:, i] * v.sqrt())
        recon = recon + 0.5 * F.binary_cross_entropy_with_logits(logits, x[:, i], reduction="sum") / b
        kl = kl + 0.5 * (0.5 * (m ** 2 + v - v.log() - 1)).sum(1).mean()
    return recon, kl, recon + beta * kl, (~keep).sum(1).float().mean()


@pytest.mark.parametrize("name", WEAK)
def test_each_method_s_loss_on_pairs_is_dlib_s(name):
    model = _model(name, beta=3.0, z_dim=5)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(16, 2, 1, 8, 8, generator=g).round()
    x[:8, 1] = x[:8, 0]  # some pairs with equal images
    changed = torch.rand(16, 4, generator=g) < 0.4
    torch.manual_seed(7)
    terms = model.losses(x, changed)
    with torch.no_grad():
        recon, kl, loss, shared = _restated(name, model, x, changed, 3.0, 7)
    assert terms["recon"].item() == pytest.approx(recon.item(), rel=1e-5)
    assert terms["kl"].item() == pytest.approx(kl.item(), rel=1e-5)
    assert terms["loss"].item() == pytest.approx(loss.item(), rel=1e-5)
    assert terms["loss"].item() == pytest.approx(terms["recon"].item() + 3.0 * terms["kl"].item(), rel=1e-6)
    assert terms["shared"].item() == pytest.approx(shared.item())
    if not name.startswith("ada"):
        assert shared.item() == pytest.approx(5 - changed.sum(1).float().mean().item())


def test_pairs_reach_the_model_and_single_images_its_metrics():
    """Each weak model declares its pair-sampler options (k, k_rule), and represent() scores single images."""
    for name in WEAK:
        cfg = compose([f"model={name}", "k=2", "k_rule=exactly_k"])
        model = instantiate(cfg.model, net=MLP((1, 8, 8), 4, hidden=16))
        assert model.pairs == {"k": 2, "k_rule": "exactly_k"}
        assert model.represent(np.zeros((3, 1, 8, 8), np.float32)).shape == (3, 4)


def test_labelled_models_need_a_latent_per_factor_and_pairs_need_a_valid_k():
    from dislab.data.toy import Toy
    from dislab.validate import ConfigError, validate_data

    data = Toy(size=16)
    with pytest.raises(ConfigError, match=r"z_dim=3 is not allowed with group_vae on Toy: .* must be >= 4"):
        validate_data(compose(["model=group_vae", "z_dim=3"]), data, {}, False)
    validate_data(compose(["model=ada_gvae", "z_dim=3"]), data, {}, False)  # the adaptive ones need no labels
    with pytest.raises(ConfigError, match=r"k=4 is not allowed for Toy: k must be -1 .* or in 1..3"):
        validate_data(compose(["model=ada_ml_vae", "k=4"]), data, {}, False)
