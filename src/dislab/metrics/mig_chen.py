"""MIG as Chen et al. computed it: sampled q(z|x) and a continuous entropy estimate over the factor grid.

Chen et al. 2018, "Isolating Sources of Disentanglement in Variational Autoencoders", Sec. 5, eq. 6:
MIG = 1/K sum_k (I(z_j(k); v_k) - I(z_j'(k); v_k)) / H(v_k), where, treating the grid of factor
combinations as the data distribution p(x) and q(z_j) = E_p(x) q(z_j|x),
I(z_j; v_k) = H(z_j) - E_v H(z_j | v_k = v), and each entropy is estimated as
H(z_j) = -E log q(z_j) with one sample z ~ q(z|x) per grid point and
log q(z_j) = logsumexp_n log q(z_j | x_n) - log N over all N grid points of the set (appendix C).

Checked against Chen et al.'s code (github.com/rtqichen/beta-tcvae, ``disentanglement_metrics.py``:
``estimate_entropies`` with n_samples 10,000 drawn without replacement from the set's samples,
conditional entropies averaged over the factor's values; ``metric_helpers/mi_metric.py``: mutual
information clamped at 0, divided by log(number of values), gap of the two largest). Chen et al.
ran it on the full dSprites grid (737,280 images) on a GPU and left shape out; here every factor
that varies on the grid is scored unless named in ``exclude_factors`` (``[shape]`` reproduces theirs).

Cost knobs: ``max_points`` caps the grid — above it, a uniform random subset of that many grid
points stands in for the grid (the conditional mixtures then hold about max_points / n_values
points each, so the estimate approaches the full-grid one as max_points grows), and H(v_k) is the
entropy of factor k in that subset (= log n_values on the full grid). ``num_samples`` caps the
samples per entropy. The work is at most (K + 1) * D * num_samples * max_points log-densities,
spread over ``n_jobs`` threads. Needs the posterior mean and log-variance, so the second parameter
is ``encode``. Key: ``mig_chen``.
"""

from __future__ import annotations

import math

import numpy as np

from dislab.metrics._sampling import encode_factors, parallel_map

_LOG_2PI = math.log(2 * math.pi)


def _entropy_1d(z: np.ndarray, mu: np.ndarray, lv: np.ndarray, chunk: int) -> float:
    """-mean_s log (1/M sum_m N(z_s; mu_m, exp lv_m)) for 1-D samples z (S,) and components (M,).

    log N(z; mu, s2) = c + b z + a z^2 with a = -1/(2 s2), b = mu/s2, c = -(log 2 pi s2 + mu^2/s2)/2,
    so a block of samples x components is one (rows, 3) @ (3, M) product, then a log-sum-exp."""
    inv = np.exp(-lv)
    w = np.stack([-0.5 * (lv + _LOG_2PI + inv * mu * mu) - math.log(len(mu)), inv * mu, -0.5 * inv])
    rows = max(1, chunk // len(mu))
    total = 0.0
    for s in range(0, len(z), rows):
        zs = z[s:s + rows]
        a = np.stack([np.ones_like(zs), zs, zs * zs], axis=1) @ w
        top = a.max(axis=1)
        a -= top[:, None]
        np.exp(a, out=a)
        total += float(np.sum(np.log(a.sum(axis=1)) + top))
    return -total / len(z)


def entropies(samples, mean, logvar, rng: np.random.Generator, *, num_samples: int = 10_000, n_jobs: int | None = 1,
              chunk: int = 1 << 17) -> np.ndarray:
    """Per-latent entropy (D,) of the mixture (1/M) sum_m q(z|x_m), from up to ``num_samples`` of the
    given samples (one per component), chosen without replacement."""
    pick = rng.permutation(len(samples))[:num_samples]
    z = samples[pick]
    return np.array(parallel_map(lambda j: _entropy_1d(z[:, j], mean[:, j], logvar[:, j], chunk),
                                 range(mean.shape[1]), n_jobs))


def mutual_info_chen(mean, logvar, factors, rng: np.random.Generator, *, num_samples: int = 10_000,
                     n_jobs: int | None = 1, chunk: int = 1 << 17) -> np.ndarray:
    """I(z_j; v_k) in nats, shape (n_latents, n_factors), with the points (mean, logvar, factors) taken
    as the data distribution and one z ~ q(z|x) drawn per point."""
    mean, logvar, factors = (np.asarray(a) for a in (mean, logvar, factors))
    mean, logvar = mean.astype(np.float64), logvar.astype(np.float64)
    if mean.ndim != 2 or mean.shape != logvar.shape or factors.ndim != 2 or len(factors) != len(mean):
        raise ValueError(f"mean {mean.shape}, logvar {logvar.shape} must be (n, D) and factors {factors.shape} (n, K)")
    if not (np.isfinite(mean).all() and np.isfinite(logvar).all()):
        raise ValueError("codes contain NaN or infinite values")
    z = mean + np.exp(0.5 * logvar) * rng.standard_normal(mean.shape)
    kw = dict(num_samples=num_samples, n_jobs=n_jobs, chunk=chunk)
    marginal = entropies(z, mean, logvar, rng, **kw)
    mi = np.zeros((mean.shape[1], factors.shape[1]))
    for k in range(factors.shape[1]):
        values, group = np.unique(factors[:, k], return_inverse=True)
        cond = np.zeros(mean.shape[1])
        for g in range(len(values)):
            at = np.flatnonzero(group == g)
            cond += len(at) / len(mean) * entropies(z[at], mean[at], logvar[at], rng, **kw)
        mi[:, k] = marginal - cond
    return mi


def mig_chen_on_params(mean, logvar, factors, rng: np.random.Generator, *, num_samples: int = 10_000,
                       n_jobs: int | None = 1, chunk: int = 1 << 17) -> dict[str, float]:
    """Chen et al.'s MIG for posterior parameters (n, D) of the points with factors (n, K); the
    points are the data distribution (the full grid, or a uniform sample of it)."""
    factors = np.asarray(factors)
    keep = (factors != factors[:1]).any(axis=0)
    if not keep.any():
        raise ValueError("MIG needs at least one factor that varies among the points")
    if np.shape(mean)[1] < 2:
        raise ValueError(f"MIG needs at least 2 latents, got {np.shape(mean)[1]}")
    factors = factors[:, keep]
    mi = np.clip(mutual_info_chen(mean, logvar, factors, rng, num_samples=num_samples, n_jobs=n_jobs, chunk=chunk),
                 0, None)
    h = np.array([-(p * np.log(p)).sum() for p in
                  (np.unique(factors[:, k], return_counts=True)[1] / len(factors) for k in range(factors.shape[1]))])
    top = np.sort(mi, axis=0)[::-1]
    return {"mig_chen": float(np.mean((top[0] - top[1]) / h))}


def mig_chen(data, encode, rng: np.random.Generator, *, num_samples: int = 10_000, max_points: int | None = 16_384,
             exclude_factors: tuple[str, ...] | list[str] = (), encode_batch: int | None = None,
             n_jobs: int | None = 1) -> dict[str, float]:
    n = len(data)
    idx = np.arange(n) if max_points is None or n <= max_points else np.sort(rng.choice(n, max_points, replace=False))
    factors = data.index_to_factors(idx)
    unknown = set(exclude_factors) - set(data.factor_names)
    if unknown:
        raise ValueError(f"exclude_factors {sorted(unknown)} not among {list(data.factor_names)}")
    mean, logvar = encode_factors(data, encode, factors, rng, encode_batch)
    keep = [k for k, name in enumerate(data.factor_names) if name not in set(exclude_factors)]
    return mig_chen_on_params(mean, logvar, factors[:, keep], rng, num_samples=num_samples, n_jobs=n_jobs)
