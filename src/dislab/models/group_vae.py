"""GVAE with known changes: the group VAE of Hosoya 2019 (arXiv:1809.02383, "A simple probabilistic
deep generative model for learning generalizable disentangled representations from grouped data")
on pairs, the labelled baseline of
Locatello et al. 2020, "Weakly-Supervised Disentanglement Without Compromises" (ICML; the paper's
equation numbers were not checked here). Latent j stands for factor j: the latents of the factors
that changed in the pair keep their own posterior, every other latent is shared and replaced in both
posteriors by the arithmetic mean (means and variances averaged); loss = (recon1 + recon2) / 2 +
beta * (KL1 + KL2) / 2, KLs of the averaged posteriors. Needs z_dim >= the number of factors.

Checked against disentanglement_lib ``methods/weak/weak_vae.py``: ``GroupVAELabels``
(``aggregate_labels``) and ``GroupVAEBase.model_fn``. dlib's label is ONE changed factor (the last
drawn by ``simple_dynamics``), so with several changed factors it averages the others' latents too;
here every changed factor's latent is kept (the same where one factor changes: always with k = 1).
"""

from dislab.models.vae import PairVAE
from dislab.objectives.weak import arithmetic_mean


class GroupVAE(PairVAE):
    labelled = True
    average = staticmethod(arithmetic_mean)
