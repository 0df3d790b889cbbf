"""The ground-truth data protocol (after disentanglement_lib's ``ground_truth_data.py``).

Numpy in, numpy out. ``rng`` is always a ``np.random.Generator``. Observations are float32
arrays of shape (n, C, H, W) with values in [0, 1]. Factors are integer indices into each
factor's grid, shape (n, K).
"""

from __future__ import annotations

import numpy as np


class GroundTruthData:
    """Base class: subclasses set ``factor_names``, ``factor_sizes``, ``x_shape`` and
    implement ``sample_observations_from_factors``."""

    factor_names: tuple[str, ...] = ()
    factor_sizes: tuple[int, ...] = ()
    x_shape: tuple[int, int, int] = (1, 64, 64)
    has_factors: bool = True

    @property
    def num_factors(self) -> int:
        return len(self.factor_sizes)

    def __len__(self) -> int:
        """Number of points on the factor grid (the training-set size N)."""
        return int(np.prod(self.factor_sizes, dtype=np.int64))

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n factor vectors drawn uniformly and independently from the grid, shape (n, K)."""
        sizes = np.asarray(self.factor_sizes, dtype=np.int64)
        return (rng.random((n, len(sizes))) * sizes).astype(np.int64)

    def sample_observations_from_factors(self, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        factors = self.sample_factors(n, rng)
        return factors, self.sample_observations_from_factors(factors, rng)

    def sample_observations(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.sample(n, rng)[1]

    # index <-> factors: row-major over factor_sizes (the order of the published files)
    def factors_to_index(self, factors: np.ndarray) -> np.ndarray:
        return np.ravel_multi_index(tuple(np.asarray(factors, dtype=np.int64).T), self.factor_sizes)

    def index_to_factors(self, index: np.ndarray) -> np.ndarray:
        return np.stack(np.unravel_index(np.asarray(index, dtype=np.int64), self.factor_sizes), axis=-1)
