"""FactorVAE: Kim & Mnih 2018, "Disentangling by Factorising", eq. 2 and Algorithm 1:
loss = recon + KL + gamma * TC, where TC(z) ~= E_q(z)[log D(z) / (1 - D(z))] (eq. 3) is the
logit difference of a discriminator D trained to tell samples of q(z) (class 0) from samples of
q-bar(z) = prod_d q(z_d) (class 1), made by permuting each latent dimension independently across
the batch. D: an MLP of 6 hidden layers of 1000 LeakyReLU(0.2) units and 2 logits, Adam lr 1e-4,
betas (0.5, 0.9) (paper, Appendix). Checked against disentanglement_lib
``methods/unsupervised/vae.py::FactorVAE`` (``make_discriminator``, ``shuffle_codes``).

Batches: as in disentanglement_lib, one batch serves both updates: the VAE step uses D's current
weights, then D is trained on that batch's detached codes z and their permutation (the paper's
Algorithm 1 draws a second batch for the permuted codes). The D loss is built from detached codes
only, so no graph is reused after an optimizer step. Only the VAE step goes through Lightning's
``LightningOptimizer.step``, so ``global_step`` (and ``steps=N``) counts training iterations; D is
stepped through the strategy (precision, callbacks such as the NaN guard still apply).
"""

import torch
import torch.nn.functional as F
from torch import nn

from dislab.models.vae import CodeDiscriminatorVAE
from dislab.objectives.adversarial import density_ratio_tc, permute_dims


def discriminator(z_dim: int, hidden: int = 1000, layers: int = 6) -> nn.Sequential:
    mods, width = [], z_dim
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
        width = hidden
    return nn.Sequential(*mods, nn.Linear(width, 2))


class FactorVAE(CodeDiscriminatorVAE):
    packable = ("gamma",)

    def __init__(self, gamma: float = 10.0, disc_lr: float = 1e-4, disc_betas=(0.5, 0.9), **kwargs):
        super().__init__(disc_lr=disc_lr, disc_betas=disc_betas, **kwargs)
        self.gamma = float(gamma)
        self.discriminator = discriminator(self.net.z_dim)

    def regularizer(self, kl, mu, logvar, z):
        self._codes = z.detach()
        tc = density_ratio_tc(self.discriminator(z))
        return kl + self.gamma * tc, {"tc": tc}

    def draws(self, b, generator=None, device=None, dtype=None):
        """The reparameterisation noise, then the uniform draws ``u`` (b, z_dim) of the permutation of the codes
        (``permute_dims``), as one training step uses them."""
        return {**super().draws(b, generator, device, dtype),
                "u": torch.rand(b, self.net.z_dim, generator=generator, device=device, dtype=dtype)}

    def discriminator_loss(self, z: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        """Cross-entropy of D on q(z) samples (class 0) and their per-dimension permutation (class 1); ``u``:
        the permutation's uniform draws (``draws``; None: drawn here)."""
        z = z.detach()
        logits = self.discriminator(torch.cat([z, permute_dims(z, u=u)]))
        target = (torch.arange(2 * len(z), device=z.device) >= len(z)).long()  # 0s then 1s, made on z's device
        return F.cross_entropy(logits, target)  # = 0.5 (CE on q(z) + CE on q-bar(z)), equal halves
