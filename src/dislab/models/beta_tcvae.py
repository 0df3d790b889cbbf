"""beta-TCVAE: Chen et al. 2018, "Isolating Sources of Disentanglement in Variational
Autoencoders", eq. 4:  loss = recon + alpha * I_q(x;z) + beta * TC(z) + gamma * sum_d KL(q(z_d)||p(z_d)).

Written as  KL + (alpha-1) MI + (beta-1) TC + (gamma-1) dwKL  with the closed-form KL, which is
equal in expectation (eq. 2: KL averaged over the data = MI + TC + dwKL) and has lower
variance; with alpha = beta = gamma = 1 it is exactly the VAE (disentanglement_lib's
``BetaTCVAE`` is the alpha = gamma = 1 case). log q(z) and log prod_d q(z_d) come from the
minibatch-weighted (``mws``, Chen et al. eq. S9 / Appendix C.1) or stratified (``mss``, Appendix C.2)
estimator on the batch, with N = the training-set size and every constant kept: disentanglement_lib's
``total_correlation`` drops the constant, its TC = this MWS TC - (D - 1) log(N M), the same gradient.

The logged ``train/mi_<estimator>``, ``train/tc_<estimator>``, ``train/dwkl_<estimator>`` (e.g.
``train/tc_mws``) are the estimator's values on one batch of M points: the published loss terms, but
biased estimates of MI, TC and dwKL (MWS logs a TC of ~120-135 nats on dSprites where the truth is a
few, and an MI above log N). For the quantities themselves read ``decomposition/mi``, ``/tc``,
``/dwkl`` (``dislab.evaluate.decomposition``: exact for a fixed evaluation sample taken as the data).
Checked against rtqichen/beta-tcvae and disentanglement_lib ``methods/unsupervised/vae.py``
(``total_correlation``, ``BetaTCVAE``).
"""

from dislab.models.vae import VAE
from dislab.objectives.gaussian import ESTIMATORS, kl_decomposition


class BetaTCVAE(VAE):
    packable = ("beta", "alpha", "gamma")

    def __init__(self, beta: float = 6.0, alpha: float = 1.0, gamma: float = 1.0, estimator: str = "mws", **kwargs):
        super().__init__(**kwargs)
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator={estimator!r} is not known; allowed: {', '.join(ESTIMATORS)}")
        if not self.dataset_size:
            raise ValueError("beta_tcvae needs dataset_size (the training-set size N)")
        self.beta, self.alpha, self.gamma, self.estimator = float(beta), float(alpha), float(gamma), estimator

    def regularizer(self, kl, mu, logvar, z):
        d = kl_decomposition(z, mu, logvar, self.dataset_size, self.estimator)
        loss = kl + (self.alpha - 1) * d["mi"] + (self.beta - 1) * d["tc"] + (self.gamma - 1) * d["dwkl"]
        return loss, {f"{k}_{self.estimator}": v for k, v in d.items()}
