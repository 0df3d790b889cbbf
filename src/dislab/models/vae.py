"""Variational autoencoder (Kingma & Welling 2014, "Auto-Encoding Variational Bayes", eq. 3 & 10)
and the base LightningModule every method subclasses.

loss = -E_q log p(x|z) + regularizer(KL, mu, logvar, z), where the reconstruction term is summed
over pixels and averaged over the batch, and KL = KL(q(z|x) || N(0, I)) summed over latents and
averaged over the batch (closed form). A method overrides ``regularizer`` only; the plain VAE's
regulariser is the KL itself.

Weakly-supervised methods (``pairs`` set: the data module's pair-sampler options) train on pairs:
a batch is (images (B, 2, C, H, W), changed factors (B, K)); both images are encoded, the method's
``pair_posteriors`` replaces the latents it takes as shared by an average of the two posteriors,
and the loss is the same sum over the 2B images' posteriors, averaged: recon = (recon1 + recon2) / 2
and KL = (KL1 + KL2) / 2 (disentanglement_lib ``methods/weak/weak_vae.py``).
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytorch_lightning as pl
import torch

from dislab.objectives.gaussian import gaussian_kl
from dislab.objectives.recon import RECON_LOSSES, reconstruction_loss


class VAE(pl.LightningModule):
    #: whether z is sampled from q(z|x) during training (False: deterministic autoencoder)
    stochastic = True
    #: a weakly-supervised method's pair-sampler options (``dislab.data.pairs.PairSampler``); None: single images
    pairs: dict | None = None

    def __init__(self, net: torch.nn.Module, optimizer: partial | None = None, recon: str = "bernoulli",
                 dataset_size: int | None = None):
        super().__init__()
        if recon not in RECON_LOSSES:
            raise ValueError(f"recon={recon!r} is not a reconstruction loss; allowed: {', '.join(RECON_LOSSES)}")
        self.net = net
        self.optimizer_factory = optimizer or partial(torch.optim.Adam, lr=1e-4)
        self.recon = recon
        self.dataset_size = dataset_size

    # -- the hook --------------------------------------------------------------------------
    def regularizer(self, kl, mu, logvar, z) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return (regulariser loss, extra scalars to log). ``kl`` is the batch-mean KL summed
        over latents; ``mu``, ``logvar``, ``z`` are (B, D)."""
        return kl, {}

    def pair_posteriors(self, mu, logvar, changed) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pair methods: the posteriors (B, 2, D) of each pair with its shared latents averaged, and the
        mean number of latents taken as shared per pair (logged). ``changed``: (B, K) changed factors."""
        raise NotImplementedError(f"{type(self).__name__} does not train on pairs")

    # -- training --------------------------------------------------------------------------
    def losses(self, x: torch.Tensor, changed: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Loss terms of a batch of images, or (with ``changed``) of pairs x (B, 2, C, H, W)."""
        pairs = {}
        if changed is not None:
            b, x = len(x), x.flatten(0, 1)
            mu, logvar = self.net.encode(x)
            mu, logvar, pairs["shared"] = self.pair_posteriors(mu.reshape(b, 2, -1), logvar.reshape(b, 2, -1), changed)
            mu, logvar = mu.flatten(0, 1), logvar.flatten(0, 1)
        else:
            mu, logvar = self.net.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.stochastic else mu
        logits = self.net.decode(z)
        recon = reconstruction_loss(logits, x, self.recon)
        kl = gaussian_kl(mu, logvar).sum(1).mean()
        reg, logs = self.regularizer(kl, mu, logvar, z)
        terms = {"loss": recon + reg, "recon": recon, "kl": kl, "elbo": -(recon + kl), **pairs, **logs}
        self.last_terms = {k: v.detach() for k, v in terms.items()}  # named by the NaN guard
        return terms

    def training_step(self, batch, batch_idx):
        terms = self.losses(*batch) if self.pairs is not None else self.losses(batch)
        self.log_terms(terms)
        return terms["loss"]

    def log_terms(self, terms: dict[str, torch.Tensor]) -> None:
        """Log ``train/<term>`` on the steps Lightning writes to its loggers (every
        ``trainer.log_every_n_steps``) and skip the rest: filling Lightning's result collection on
        every step cost ~3 % of a conv64 training step on CPU (py-spy), for values never written."""
        connector = getattr(self.trainer, "_logger_connector", None)
        if connector is None or connector.should_update_logs:
            self.log_dict({f"train/{k}": v.detach() for k, v in terms.items()}, on_step=True, on_epoch=False)

    def configure_optimizers(self):
        return self.optimizer_factory(self.parameters())

    # -- inference -------------------------------------------------------------------------
    def _infer(self, fn, x: np.ndarray | torch.Tensor):
        """``fn`` on ``x`` (numpy, or a tensor such as images rendered on the model's device) in eval
        mode without gradients."""
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                if isinstance(x, torch.Tensor):
                    return fn(x.to(self.device, torch.float32))
                return fn(torch.as_tensor(np.asarray(x, dtype=np.float32), device=self.device))
        finally:
            self.train(was_training)

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and log-variance of q(z|x) for a numpy batch."""
        mu, logvar = self._infer(self.net.encode, x)
        return mu.cpu().numpy(), logvar.cpu().numpy()

    def represent(self, x: np.ndarray) -> np.ndarray:
        """The representation scored by metrics: the posterior mean, shape (n, z_dim)."""
        return self._infer(lambda t: self.net.encode(t)[0], x).cpu().numpy()

    def sample_prior(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` codes from the prior p(z) = N(0, I), for ``decode`` (pictures of samples)."""
        return rng.standard_normal((n, self.net.z_dim)).astype(np.float32)

    def decode(self, z: np.ndarray) -> np.ndarray:
        """Mean image sigmoid(logits) for latent codes, shape (n, C, H, W)."""
        return self._infer(lambda t: torch.sigmoid(self.net.decode(t)), z).cpu().numpy()
