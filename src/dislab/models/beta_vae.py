"""beta-VAE: Higgins et al. 2017, "beta-VAE: Learning Basic Visual Concepts with a Constrained
Variational Framework", eq. 4: loss = recon + beta * KL(q(z|x) || p(z)).
Checked against disentanglement_lib ``methods/unsupervised/vae.py::BetaVAE``."""

from dislab.models.vae import VAE


class BetaVAE(VAE):
    packable = ("beta",)

    def __init__(self, beta: float = 4.0, **kwargs):
        super().__init__(**kwargs)
        self.beta = float(beta)

    def regularizer(self, kl, mu, logvar, z):
        return self.beta * kl, {}
