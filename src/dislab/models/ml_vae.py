"""ML-VAE with known changes: the multi-level VAE of Bouchacourt et al. 2018 ("Multi-Level Variational
Autoencoder: Learning Disentangled Representations from Grouped Observations", AAAI) on pairs, the
labelled baseline of Locatello et al. 2020, "Weakly-Supervised Disentanglement Without Compromises"
(ICML; the paper's equation numbers were not checked here). Latent j stands for factor j: the latents
of the factors that changed keep their own posterior, every other latent is replaced in both
posteriors by the product of the two (dlib's form: mean (mu1/v1 + mu2/v2) / (1/v1 + 1/v2), variance
2 v1 v2 / (v1 + v2)); loss = (recon1 + recon2) / 2 + beta * (KL1 + KL2) / 2. Needs z_dim >= the
number of factors.

Checked against disentanglement_lib ``methods/weak/weak_vae.py``: ``MLVaeLabels``
(``aggregate_labels``) and ``MLVae.model_fn``. dlib's label is ONE changed factor (the last drawn by
``simple_dynamics``); here every changed factor's latent is kept (the same where one factor changes).
"""

from dislab.models.vae import PairVAE
from dislab.objectives.weak import product_of_experts


class MLVAE(PairVAE):
    labelled = True
    average = staticmethod(product_of_experts)
