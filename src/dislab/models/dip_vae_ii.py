"""DIP-VAE-II: Kumar et al. 2018, "Variational Inference of Disentangled Latent Concepts from
Unlabeled Observations", eq. 7: loss = recon + KL + lambda_od sum_{i!=j} Cov_ij^2 +
lambda_d sum_i (Cov_ii - 1)^2 with Cov = Cov_q(z)[z] = E_p(x)[diag sigma^2(x)] + Cov_p(x)[mu(x)],
both estimated on the batch (means centred on the batch axis, divided by B). lambda_d defaults to
lambda_od (the paper's setting). Checked against disentanglement_lib
``methods/unsupervised/vae.py::DIPVAE`` (dip_type "ii", lambda_d_factor 1).
"""

from dislab.models.vae import VAE
from dislab.objectives.covariance import diag_off_diag_penalty, dip_covariance


class DIPVAEII(VAE):
    def __init__(self, lambda_od: float = 10.0, lambda_d: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.lambda_od = float(lambda_od)
        self.lambda_d = self.lambda_od if lambda_d is None else float(lambda_d)

    def regularizer(self, kl, mu, logvar, z):
        dip = diag_off_diag_penalty(dip_covariance(mu, logvar, "ii"), self.lambda_od, self.lambda_d)
        return kl + dip, {"dip": dip}
