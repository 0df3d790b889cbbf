"""InfoGAN: Chen et al. 2016, "InfoGAN: Interpretable Representation Learning by Information
Maximizing Generative Adversarial Nets", eq. 6: min_{G,Q} max_D V_GAN(D, G) - lam * L_I(G, Q),
L_I = E[log Q(c | G(z, c))] + H(c) <= I(c; G(z, c)) (Lemma 5.1). Checked against openai/InfoGAN
``infogan_trainer.py``: D loss -log D(x) - log(1 - D(G)) - lam * MI, G loss -log D(G) - lam * MI
(non-saturating), Q shares D's body and is trained with D's optimizer, one D step then one G step.

Latent layout (``decode``'s input, z_dim = the net's): [n_cat one-hot blocks of cat_dim (uniform
categorical codes), n_cont continuous codes ~ U(-1, 1), z_dim - n_cat*cat_dim - n_cont noise ~ N(0, I)].
Architecture for 64x64 (other sizes: MLPs of the same widths): G has conv64's decoder shape with
batch norm after every hidden layer (the paper's G, appendix C, has it); D/Q share conv64_paper's
encoder shape (4x4 kernels throughout) with LeakyReLU(0.2) and FC 256; heads: D 1 logit, Q FC 128
+ outputs. Q predicts categorical logits and, for the continuous codes, the mean of a unit-variance
Gaussian (openai's ``fix_std=True``).
G's batch norm is what makes it learn here: without it, on dSprites, D wins and G collapses to black
images within 500 steps, with or without spectral norm in D. D's layers are spectrally normalised
(Miyato et al. 2018) instead of batch-normalised as in the paper: with batch norm, Q in eval mode
(``represent``) would see running statistics pooled over real and generated batches. ``net`` only
fixes the image shape and z_dim; G replaces it (``self.net``).
Optimizers as the paper's (section 6 / appendix C): D Adam lr 2e-4, G Adam lr 1e-3, both betas
(0.5, 0.999) (G's through conf/model/infogan.yaml: ``lr``, ``optimizer.betas``). D is stepped through
the strategy, not LightningOptimizer.step, so ``global_step`` counts iterations (G steps).
``represent``: Q's categorical probabilities and continuous means; ``encode`` gives the same in
the layout above (noise slots 0, log-variances 0), so ``decode(encode(x)[0])`` reconstructs.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dislab.models.vae import VAE
from dislab.objectives.information import categorical_mi_lower_bound, uniform_gaussian_mi_lower_bound


def dq_body(x_shape, width: int = 256) -> nn.Sequential:
    """D and Q's shared body, spectrally normalised."""
    c, h, w = x_shape
    act, sn = (lambda: nn.LeakyReLU(0.2)), nn.utils.parametrizations.spectral_norm
    if (h, w) == (64, 64):
        chans = ((c, 32), (32, 32), (32, 64), (64, 64))
        convs = [m for cin, cout in chans for m in (sn(nn.Conv2d(cin, cout, 4, 2, 1)), act())]
        return nn.Sequential(*convs, nn.Flatten(), sn(nn.Linear(64 * 4 * 4, width)), act())
    return nn.Sequential(nn.Flatten(), sn(nn.Linear(c * h * w, 1024)), act(), sn(nn.Linear(1024, width)), act())


class Generator(nn.Module):
    """G(z): conv64's decoder shape (64x64) or an MLP, batch norm + ReLU after every hidden layer;
    ``decode`` returns logits, as every net's does."""

    def __init__(self, x_shape, z_dim: int):
        super().__init__()
        self.x_shape, self.z_dim = tuple(x_shape), int(z_dim)
        c, h, w = self.x_shape

        def block(layer, n, bn=nn.BatchNorm1d):
            return [layer, bn(n), nn.ReLU()]

        head = [*block(nn.Linear(z_dim, 256), 256), *block(nn.Linear(256, 1024), 1024)]
        if (h, w) == (64, 64):
            ups = [m for cin, cout in ((64, 64), (64, 32), (32, 32))
                   for m in block(nn.ConvTranspose2d(cin, cout, 4, 2, 1), cout, nn.BatchNorm2d)]
            self.decoder = nn.Sequential(*head, nn.Unflatten(1, (64, 4, 4)), *ups, nn.ConvTranspose2d(32, c, 4, 2, 1))
        else:
            self.decoder = nn.Sequential(*head, nn.Linear(1024, c * h * w), nn.Unflatten(1, self.x_shape))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


class InfoGAN(VAE):
    #: why a packed group (``dislab.pack``) cannot hold it
    pack_refusal = "a GAN's step is not the VAE step a packed group maps"
    stochastic = False

    def __init__(self, lam: float = 1.0, n_cat: int = 1, cat_dim: int = 3, n_cont: int = 4, disc_lr: float = 2e-4,
                 disc_betas=(0.5, 0.999), **kwargs):
        super().__init__(**kwargs)
        self.net = Generator(self.net.x_shape, self.net.z_dim)
        self.automatic_optimization = False
        self.lam, self.n_cat, self.cat_dim, self.n_cont = float(lam), int(n_cat), int(cat_dim), int(n_cont)
        self.n_code = self.n_cat * self.cat_dim + self.n_cont
        self.n_noise = self.net.z_dim - self.n_code
        if self.n_noise < 0 or (self.n_cat and self.cat_dim < 2):
            raise ValueError(f"infogan needs cat_dim >= 2 and z_dim >= n_cat*cat_dim + n_cont = {self.n_code}; "
                             f"got z_dim={self.net.z_dim}, cat_dim={self.cat_dim}")
        self.disc_lr, self.disc_betas = float(disc_lr), tuple(disc_betas)
        self.body = dq_body(self.net.x_shape)
        self.d_head = nn.Linear(256, 1)
        self.q_head = nn.Sequential(nn.Linear(256, 128), nn.LeakyReLU(0.2), nn.Linear(128, self.n_code))

    def losses(self, x):
        raise NotImplementedError("InfoGAN has no posterior q(z|x): it trains adversarially (training_step)")

    def sample_latents(self, b: int):
        """(z in the layout above, categorical indices (b, n_cat), continuous codes (b, n_cont))."""
        idx = torch.randint(self.cat_dim, (b, self.n_cat), device=self.device)
        cont = torch.rand(b, self.n_cont, device=self.device) * 2 - 1
        cat = F.one_hot(idx, self.cat_dim).flatten(1).float()
        return torch.cat([cat, cont, torch.randn(b, self.n_noise, device=self.device)], 1), idx, cont

    def sample_prior(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Codes and noise in decode's layout (from torch's generator, as in training; ``rng`` unused)."""
        return self.sample_latents(n)[0].cpu().numpy()

    def discriminate(self, x):
        """(D's logit (B,), Q's outputs (B, n_code): categorical logits then continuous means)."""
        h = self.body(x)
        return self.d_head(h).squeeze(1), self.q_head(h)

    def mutual_information(self, q, idx, cont) -> dict[str, torch.Tensor]:
        k = self.n_cat * self.cat_dim
        mi_cat = categorical_mi_lower_bound(q[:, :k].reshape(len(q), self.n_cat, self.cat_dim), idx)
        mi_cont = uniform_gaussian_mi_lower_bound(q[:, k:], cont)
        return {"mi": mi_cat + mi_cont, "mi_cat": mi_cat, "mi_cont": mi_cont}

    def training_step(self, batch, batch_idx):
        opt_g, opt_d = self.optimizers()
        z, idx, cont = self.sample_latents(len(batch))
        fake = torch.sigmoid(self.net.decode(z))
        d_both, q_both = self.discriminate(torch.cat([batch, fake.detach()]))  # no batch statistics in D
        d_real, d_fake, q = d_both[: len(batch)], d_both[len(batch):], q_both[len(batch):]
        d_gan = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + \
            F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        d_loss = d_gan - self.lam * self.mutual_information(q, idx, cont)["mi"]
        self.last_terms = {"disc_loss": d_loss.detach()}  # named by the NaN guard
        opt_d.zero_grad()
        self.manual_backward(d_loss)
        self.trainer.strategy.optimizer_step(opt_d.optimizer, closure=lambda: None)  # not counted in global_step
        d_fake, q = self.discriminate(fake)  # a fresh D/Q forward after D's step; G's graph is untouched
        mi = self.mutual_information(q, idx, cont)
        g_gan = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
        loss = g_gan - self.lam * mi["mi"]
        terms = {"loss": loss, "disc_loss": d_loss, "gan_g": g_gan, "gan_d": d_gan, **mi}
        self.last_terms = {k: v.detach() for k, v in terms.items()}
        opt_g.zero_grad()  # G's gradients on D/Q are dropped by opt_d.zero_grad() in the next step
        self.manual_backward(loss)
        opt_g.step()
        self.log_terms(terms)

    def configure_optimizers(self):
        disc = [*self.body.parameters(), *self.d_head.parameters(), *self.q_head.parameters()]
        return [self.optimizer_factory(self.net.parameters()),
                torch.optim.Adam(disc, lr=self.disc_lr, betas=self.disc_betas)]

    # -- inference: Q's outputs in decode's layout ----------------------------------------------
    def _codes(self, x: torch.Tensor) -> torch.Tensor:
        q = self.discriminate(x)[1]
        k = self.n_cat * self.cat_dim
        probs = q[:, :k].reshape(len(q), self.n_cat, self.cat_dim).softmax(-1).flatten(1)
        return torch.cat([probs, q[:, k:], q.new_zeros(len(q), self.n_noise)], 1)

    def encode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = self._infer(self._codes, x).cpu().numpy()
        return mean, np.zeros_like(mean)

    def represent(self, x: np.ndarray) -> np.ndarray:
        return self.encode(x)[0][:, : self.n_code]
