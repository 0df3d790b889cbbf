"""DIP-VAE-II: Kumar et al. 2018, "Variational Inference of Disentangled Latent Concepts from
Unlabeled Observations", eq. 7: loss = recon + KL + lambda_od sum_{i!=j} Cov_ij^2 +
lambda_d sum_i (Cov_ii - 1)^2 with Cov = Cov_q(z)[z] = E_p(x)[diag sigma^2(x)] + Cov_p(x)[mu(x)],
both estimated on the batch (means centred on the batch axis, divided by B). lambda_d defaults to
lambda_od (the paper's setting). Checked against disentanglement_lib
``methods/unsupervised/vae.py::DIPVAE`` (dip_type "ii", lambda_d_factor 1).
"""

from dislab.models.dip_vae_i import DIPVAEI


class DIPVAEII(DIPVAEI):
    kind, lambda_d_factor = "ii", 1.0
