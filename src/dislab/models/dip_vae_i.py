"""DIP-VAE-I: Kumar et al. 2018, "Variational Inference of Disentangled Latent Concepts from
Unlabeled Observations", eq. 6: loss = recon + KL + lambda_od sum_{i!=j} Cov_ij^2 +
lambda_d sum_i (Cov_ii - 1)^2 with Cov = Cov_p(x)[mu(x)], the covariance of the posterior means
over the batch (centred on the batch axis, divided by B). lambda_d defaults to 10 * lambda_od
(the paper's setting). Checked against disentanglement_lib ``methods/unsupervised/vae.py::DIPVAE``
(dip_type "i", lambda_d_factor 10).
"""

from dislab.models.vae import VAE
from dislab.objectives.covariance import diag_off_diag_penalty, dip_covariance


class DIPVAEI(VAE):
    packable = ("lambda_od", "lambda_d")
    kind, lambda_d_factor = "i", 10.0  # DIP-VAE-II (dip_vae_ii.py) changes these two only

    def __init__(self, lambda_od: float = 10.0, lambda_d: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.lambda_od = float(lambda_od)
        self.lambda_d = self.lambda_d_factor * self.lambda_od if lambda_d is None else float(lambda_d)

    def regularizer(self, kl, mu, logvar, z):
        dip = diag_off_diag_penalty(dip_covariance(mu, logvar, self.kind), self.lambda_od, self.lambda_d)
        return kl + dip, {"dip": dip}
