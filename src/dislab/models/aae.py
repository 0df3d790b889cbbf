"""Adversarial autoencoder: Makhzani et al. 2016, "Adversarial Autoencoders", Section 2 (eq. 1 and
the reconstruction / regularisation phases): a discriminator D learns to tell samples of the prior
p(z) = N(0, I) (positive) from codes of the aggregated posterior q(z) (negative), and the encoder
is trained to fool it. loss = recon + lam * (-log D(z)) (the non-saturating generator loss); no KL.

Encoder: deterministic, z = mu(x), the choice the paper reports all its results with (Section 2.1:
deterministic, Gaussian-posterior and universal-approximator encoders gave similar results). With
a Gaussian posterior and no KL term nothing but the adversary would hold the variances up, so they
would shrink towards an AE anyway. The log-variance head is unused: ``encode``'s log-variance and the
logged ``train/kl`` / ``train/elbo`` are those of an untrained head (reference only).
D: 2 hidden layers of 1000 ReLU units and one logit (the size of the paper's MNIST networks); Adam
lr 1e-4, betas (0.5, 0.9) (the paper used SGD with momentum; Adam as for FactorVAE's D here).
Both phases share one batch: one encoder/decoder step on recon + lam * adversarial loss (the
lam-weighted joint form of the paper's two phases), then one D step on the detached codes.
Only the autoencoder step is counted by Lightning, so ``steps=N`` is N training iterations.
There is no official implementation: checked against the paper's Section 2 and Figure 1 only.
"""

import torch
import torch.nn.functional as F
from torch import nn

from dislab.models.vae import CodeDiscriminatorVAE


class AAE(CodeDiscriminatorVAE):
    #: why a packed group (``dislab.pack``) cannot hold it
    pack_refusal = "its discriminator draws prior samples inside its loss"
    stochastic = False

    def __init__(self, lam: float = 1.0, disc_hidden: int = 1000, disc_lr: float = 1e-4, disc_betas=(0.5, 0.9),
                 **kwargs):
        super().__init__(disc_lr=disc_lr, disc_betas=disc_betas, **kwargs)
        self.lam = float(lam)
        h = disc_hidden
        self.discriminator = nn.Sequential(nn.Linear(self.net.z_dim, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(),
                                           nn.Linear(h, 1))

    def regularizer(self, kl, mu, logvar, z):
        self._codes = z.detach()
        logit = self.discriminator(z).squeeze(1)
        adv = F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit))  # -log D(z), batch mean
        return self.lam * adv, {"adv": adv}

    def discriminator_loss(self, z: torch.Tensor) -> torch.Tensor:
        """-log D(z_prior) - log(1 - D(z_q)), batch means; codes detached."""
        z = z.detach()
        real, fake = self.discriminator(torch.randn_like(z)), self.discriminator(z)
        return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
