"""Ada-GVAE: Locatello et al. 2020, "Weakly-Supervised Disentanglement Without Compromises" (ICML),
the adaptive group VAE (the paper's equation numbers were not checked here). On pairs (x1, x2) that
share some factors, the latents i with delta_i = KL(q(z_i|x1) || q(z_i|x2)) below the paper's
threshold tau = (max_i delta_i + min_i delta_i) / 2 are taken as shared, and in both posteriors they
are replaced by the two posteriors' arithmetic mean (GVAE, Hosoya 2019: means and variances
averaged); loss = (recon1 + recon2) / 2 + beta * (KL1 + KL2) / 2, KLs of the averaged posteriors.

Checked against disentanglement_lib ``methods/weak/weak_vae.py``: ``GroupVAEArgmax``
(``aggregate_argmax``, ``discretize_in_bins``, ``compute_kl``) and ``GroupVAEBase.model_fn``. The
pairs: ``dislab.data.pairs`` (dlib ``train_weak_lib.py::simple_dynamics``); the terms:
``dislab.objectives.weak``.
"""

from dislab.models.vae import PairVAE
from dislab.objectives.weak import arithmetic_mean


class AdaGVAE(PairVAE):
    average = staticmethod(arithmetic_mean)
