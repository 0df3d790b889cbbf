"""AnnealedVAE (capacity annealing): Burgess et al. 2018, "Understanding disentangling in
beta-VAE", eq. 8: loss = recon + gamma * |KL(q(z|x) || p(z)) - C|, with the capacity C raised
linearly from 0 to ``c_max`` nats over ``c_steps`` training steps and held there.
C is derived from ``self.global_step`` (restored from a checkpoint), so a resumed run continues
the schedule. Checked against disentanglement_lib ``methods/unsupervised/vae.py::AnnealedVAE``
(c = min(c_max * step / iteration_threshold, c_max); loss = gamma * |kl - c|).
"""

import torch

from dislab.models.vae import VAE


class AnnealedVAE(VAE):
    packable = ("gamma", "c_max")

    def __init__(self, gamma: float = 1000.0, c_max: float = 25.0, c_steps: int = 100_000, **kwargs):
        super().__init__(**kwargs)
        if c_steps < 0:
            raise ValueError(f"c_steps={c_steps} must be >= 0")
        self.gamma, self.c_max, self.c_steps = float(gamma), float(c_max), int(c_steps)

    def capacity(self, step):
        """C(step) in nats: linear from 0 at step 0 to c_max at step c_steps (c_steps=0: c_max); ``step`` an int
        or (a packed group's) a tensor."""
        if not self.c_steps:
            return self.c_max
        if torch.is_tensor(step):  # in float64, as Python computes the int's
            return self.c_max * (step.double() / self.c_steps).clamp(max=1.0)
        frac = min(1.0, step / self.c_steps)
        return self.c_max * frac

    def regularizer(self, kl, mu, logvar, z):
        c = self.capacity(self.current_step())
        return self.gamma * (kl - c).abs(), {"capacity": torch.as_tensor(c, dtype=kl.dtype, device=kl.device)}
