"""Pairs of observations that share all but a few factors, for the weakly-supervised methods of
Locatello et al. 2020, "Weakly-Supervised Disentanglement Without Compromises" (ICML): x1 = g(z),
x2 = g(z~), where z~ equals z except in k factors.

The rule is disentanglement_lib's ``methods/weak/train_weak_lib.py::simple_dynamics``, per pair:

1. ``k = -1``: k is drawn uniformly from 1..m-1 (dlib: ``randint(1, num_factors)``), where m is the
   number of factors that vary (size > 1); else k is the given k (1 <= k <= m-1: at least one
   factor is shared).
2. The number of factors changed: ``k_rule=one_or_k`` (dlib's rule) draws 1 or k with probability
   1/2 each (``random_state.choice([1, k])``); ``k_rule=exactly_k`` changes exactly k.
3. Which: a uniformly random subset of that size of the factors that vary.
4. The second value of each changed factor is drawn uniformly among its OTHER values.

Where dislab differs from dlib, on purpose: dlib draws the new value uniformly among ALL values
(so a "changed" factor keeps its value with probability 1/size), from numpy's unseeded global
generator (``np.random.choice``), and may pick a factor of size 1; here the new value always
differs, every draw comes from the step's seeded generator (batch t of a run draws from
``default_rng([seed, t])``, so a resumed run sees the same pairs), and constant factors are never
chosen. dlib labels a pair with one changed factor's index (the last one drawn); here the labels
are the mask of every changed factor.

A batch of n pairs is rendered whole, as one batch of 2n images in the order x1_0, x2_0, x1_1, ...
(numpy on the host, or ``paint`` on a device from the packed draws; the same images either way).
"""

from __future__ import annotations

import numpy as np
import torch

from dislab.data._device import pack

K_RULES = ("one_or_k", "exactly_k")


class PairSampler:
    def __init__(self, data, k: int = -1, k_rule: str = "one_or_k"):
        name = type(data).__name__
        if not getattr(data, "has_factors", True):
            raise ValueError(f"pairs need ground-truth factors, which {name} lacks; use an unsupervised model")
        if k_rule not in K_RULES:
            raise ValueError(f"k_rule={k_rule!r} is not allowed; use one of {', '.join(K_RULES)}")
        self.data, self.k, self.k_rule = data, int(k), k_rule
        self.sizes = np.asarray(data.factor_sizes, dtype=np.int64)
        self.free = np.flatnonzero(self.sizes > 1)  # the factors that vary
        m = len(self.free)
        if m < 2:
            raise ValueError(f"pairs need at least two factors that vary; {name} has {m}")
        if not (k == -1 or 1 <= k <= m - 1):
            raise ValueError(f"k={k} is not allowed for {name}: k must be -1 (drawn per pair) or in 1..{m - 1} "
                             f"(its {m} varying factors, at least one shared)")

    def factors(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(z1, z2), each (n, K) int64: z1 drawn as ``data.sample_factors``, z2 by the pair rule."""
        z1 = self.data.sample_factors(n, rng)
        m = len(self.free)
        k = rng.integers(1, m, n) if self.k == -1 else np.full(n, self.k)
        if self.k_rule == "one_or_k":
            k = np.where(rng.integers(0, 2, n) == 0, 1, k)
        order = rng.permuted(np.tile(np.arange(m), (n, 1)), axis=1)  # a uniform random order per pair
        chosen = np.zeros((n, m), dtype=bool)
        np.put_along_axis(chosen, order, np.arange(m) < k[:, None], axis=1)  # its first k
        sizes = self.sizes[self.free]
        other = (z1[:, self.free] + rng.integers(1, sizes, (n, m))) % sizes  # uniform among the other values
        z2 = z1.copy()
        z2[:, self.free] = np.where(chosen, other, z1[:, self.free])
        return z1, z2

    def _interleaved(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack(self.factors(n, rng), 1).reshape(2 * n, -1)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """n pairs rendered by numpy: images (n, 2, C, H, W) float32 and the changed factors (n, K) bool."""
        f = self._interleaved(n, rng)
        x = self.data.sample_observations_from_factors(f, rng)
        return x.reshape(n, 2, *x.shape[1:]), f[0::2] != f[1::2]

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """The draws of n pairs for a device renderer: packed rows (2n, K + P) float64 (``_device.pack``),
        drawn from ``rng`` exactly as ``sample`` draws them."""
        f = self._interleaved(n, rng)
        return pack(f, self.data.random_params(f, rng))

    def split(self, images: torch.Tensor, rows: torch.Tensor, n: int):
        """Batches of n pairs from images painted from ``draw``'s rows (several steps' worth):
        (images (n, 2, C, H, W), changed factors (n, K) bool), on the images' device."""
        f = rows[:, :len(self.sizes)]
        for x, fx in zip(images.split(2 * n), f.split(2 * n), strict=True):
            yield x.view(-1, 2, *x.shape[1:]), fx[0::2] != fx[1::2]
