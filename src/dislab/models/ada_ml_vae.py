"""Ada-ML-VAE: Locatello et al. 2020, "Weakly-Supervised Disentanglement Without Compromises" (ICML),
the adaptive multi-level VAE (the paper's equation numbers were not checked here). As Ada-GVAE
(latents with delta_i = KL(q(z_i|x1) || q(z_i|x2)) below tau = (max delta + min delta) / 2 are
shared), but the shared latents are replaced by the product of the two posteriors (ML-VAE,
Bouchacourt et al. 2018), in dlib's form: mean (mu1/v1 + mu2/v2) / (1/v1 + 1/v2), variance
2 v1 v2 / (v1 + v2); loss = (recon1 + recon2) / 2 + beta * (KL1 + KL2) / 2.

Checked against disentanglement_lib ``methods/weak/weak_vae.py``: ``MLVaeArgmax``
(``aggregate_argmax``, ``discretize_in_bins``, ``compute_kl``) and ``MLVae.model_fn``. The pairs:
``dislab.data.pairs`` (dlib ``train_weak_lib.py::simple_dynamics``); the terms:
``dislab.objectives.weak``.
"""

from dislab.models.vae import PairVAE
from dislab.objectives.weak import product_of_experts


class AdaMLVAE(PairVAE):
    average = staticmethod(product_of_experts)
