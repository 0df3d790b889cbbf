"""Deterministic autoencoder: the baseline without a prior (Hinton & Salakhutdinov 2006, "Reducing
the Dimensionality of Data with Neural Networks"). loss = -log p(x | z = mu(x)), reconstruction
summed over pixels and averaged over the batch; no regulariser. z is the encoder's mean (no
sampling); the encoder's log-variance head is unused, so ``encode``'s log-variance is untrained.
The logged ``train/kl`` is that of the untrained head, for reference only.
No reference implementation: the loss is vae.py's with the regulariser 0 and z = mu.
"""

from dislab.models.vae import VAE


class AE(VAE):
    stochastic = False

    def regularizer(self, kl, mu, logvar, z):
        return kl.new_zeros(()), {}
