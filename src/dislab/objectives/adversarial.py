"""Pieces of the density-ratio (discriminator) methods.

- ``permute_dims``: Kim & Mnih 2018, "Disentangling by Factorising", Algorithm 1: samples of
  q-bar(z) = prod_d q(z_d) are drawn by permuting each latent dimension independently across the
  batch, which keeps every marginal q(z_d) and breaks the dependence between dimensions.
- ``density_ratio_tc``: the discriminator's TC estimate, eq. 3: TC(z) = KL(q(z)||q-bar(z)) ~=
  E_q(z)[log D(z) / (1 - D(z))], which for a 2-way softmax D is the logit difference.
- ``CodeDiscriminatorVAE``: the base of FactorVAE and AAE (their training step and optimizers).
"""

from __future__ import annotations

import torch

from dislab.models.vae import VAE


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each column of ``z`` (B, D) shuffled by its own random permutation of the batch rows."""
    b, d = z.shape
    idx = torch.argsort(torch.rand(b, d, generator=generator, device=z.device), dim=0)
    return torch.gather(z, 0, idx)


def density_ratio_tc(logits: torch.Tensor) -> torch.Tensor:
    """Batch mean of logit[:, 0] - logit[:, 1] = log D(z) / (1 - D(z)) with class 0 = "from q(z)"."""
    return (logits[:, 0] - logits[:, 1]).mean()


class CodeDiscriminatorVAE(VAE):
    """A method with a discriminator on the codes (FactorVAE, AAE). A subclass builds
    ``self.discriminator`` after ``super().__init__`` and defines ``regularizer`` (which reads D and
    keeps the detached codes in ``self._codes``) and ``discriminator_loss``. D has its own Adam
    (``disc_lr``, ``disc_betas``).

    One training iteration, under Lightning manual optimization: the autoencoder's loss is stepped
    first, then D's loss on the detached codes. No graph is reused after an optimizer step. D's
    gradients from the first backward are discarded by ``opt_d.zero_grad()``. Only the autoencoder
    step goes through Lightning's counted step, so ``global_step`` counts iterations; D is stepped
    through the strategy (precision, callbacks such as the NaN guard still apply)."""

    def __init__(self, disc_lr: float = 1e-4, disc_betas=(0.5, 0.9), **kwargs):
        super().__init__(**kwargs)
        self.automatic_optimization = False
        self.disc_lr, self.disc_betas = float(disc_lr), tuple(disc_betas)
        self._codes = None

    def training_step(self, batch, batch_idx):
        opt_ae, opt_d = self.optimizers()
        terms = self.losses(batch)
        opt_ae.zero_grad()
        self.manual_backward(terms["loss"])
        opt_ae.step()
        terms["disc_loss"] = d_loss = self.discriminator_loss(self._codes)
        self.last_terms["disc_loss"] = d_loss.detach()  # named by the NaN guard
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        self.trainer.strategy.optimizer_step(opt_d.optimizer, closure=lambda: None)
        self.log_terms(terms)

    def configure_optimizers(self):
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=self.disc_lr, betas=self.disc_betas)
        return [self.optimizer_factory(self.net.parameters()), opt_d]
