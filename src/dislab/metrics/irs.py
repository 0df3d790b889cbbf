"""IRS: Interventional Robustness Score.

Suter et al. 2019, "Robustly Disentangled Causal Mechanisms: Validating Deep Representations for
Interventional Robustness", Sec. 4 (eq. 6-8, "Estimation"): for factor k and each of its values v,
the expected deviation of latent d from its mean over the points with v_k = v (changes of the
nuisance factors are interventions when factors are independent), taken as the ``diff_quantile``
quantile of |z_d - E[z_d | v_k = v]| and averaged over v; normalised by the latent's largest
deviation from its overall mean, IRS_dk = 1 - that ratio; the score is the average over latents of
max_k IRS_dk, weighted by each latent's largest deviation.

Checked against disentanglement_lib ``evaluation/metrics/irs.py`` (``compute_irs``,
``scalable_disentanglement_score``: like disentanglement_lib, it scores an observational sample —
no separate intervention batches — grouping the points by the factors after the 20-bin histogram
discretiser, drops constant latents, diff_quantile 0.99; ``config/sample/irs/irs.gin``: num_train
10,000, batch_size 16, 20 bins). ``num_bins=None`` groups by the raw factor values instead.
Fixes: disentanglement_lib reports ``num_active_dims`` as the *sum of the codes' values* of the
active latents (``np.sum(active_mus)``); here it is their number. Constant factors are dropped
(each would otherwise contribute a spurious column). Keys: ``irs``, ``irs_num_active_dims``.
"""

from __future__ import annotations

import numpy as np

from dislab.metrics._sampling import check_codes, keep_varying, sample_codes
from dislab.metrics.information import histogram_discretize


def irs_matrix(codes: np.ndarray, factors: np.ndarray, *, diff_quantile: float = 0.99) -> tuple[np.ndarray, np.ndarray]:
    """(IRS_dk of shape (n_latents, n_factors), max deviation per latent (n_latents,)) for codes
    without constant latents and discrete factors."""
    max_dev = np.abs(codes - codes.mean(axis=0)).max(axis=0)
    cum = np.zeros((codes.shape[1], factors.shape[1]))
    for k in range(factors.shape[1]):
        values, group = np.unique(factors[:, k], return_inverse=True)
        order = np.argsort(group, kind="stable")
        bounds = np.searchsorted(group[order], np.arange(len(values) + 1))
        for g in range(len(values)):
            z = codes[order[bounds[g]:bounds[g + 1]]]
            cum[:, k] += np.percentile(np.abs(z - z.mean(axis=0)), q=diff_quantile * 100, axis=0)
        cum[:, k] /= len(values)
    return 1.0 - cum / max_dev[:, None], max_dev


def irs_on_codes(codes, factors, *, diff_quantile: float = 0.99, num_bins: int | None = 20) -> dict[str, float]:
    codes, factors = check_codes(codes, factors)
    if not 0 <= diff_quantile <= 1:
        raise ValueError(f"diff_quantile={diff_quantile} must be in [0, 1]")
    (factors,) = keep_varying(factors, what="IRS")
    if num_bins is not None:
        factors = histogram_discretize(factors.astype(np.float64), num_bins)
    active = codes.var(axis=0) > 0
    if not active.any():
        return {"irs": 0.0, "irs_num_active_dims": 0.0}
    m, max_dev = irs_matrix(codes[:, active], factors, diff_quantile=diff_quantile)
    return {"irs": float(np.average(m.max(axis=1), weights=max_dev)), "irs_num_active_dims": float(active.sum())}


def irs(data, represent, rng: np.random.Generator, *, num_train: int = 10_000, batch_size: int = 16,
        diff_quantile: float = 0.99, num_bins: int | None = 20, encode_batch: int | None = None) -> dict[str, float]:
    codes, factors = sample_codes(data, represent, num_train, rng, batch_size, encode_batch)
    return irs_on_codes(codes, factors, diff_quantile=diff_quantile, num_bins=num_bins)
