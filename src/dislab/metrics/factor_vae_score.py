"""FactorVAE score.

Kim & Mnih 2018, "Disentangling by Factorising", Sec. 4 (Fig. 2): rescale each latent by its
standard deviation over the data, drop collapsed latents, then repeatedly fix one factor k over a
batch of ``batch_size`` points, find the latent d with the smallest normalised variance over the
batch, and record the vote (d, k). A majority-vote classifier (each latent predicts the factor it
voted for most often on the training votes) is scored on fresh evaluation votes.

Checked against disentanglement_lib ``evaluation/metrics/factor_vae.py`` (``compute_factor_vae``,
``_prune_dims``, ``_compute_variances``) and ``factor_vae_metric.gin`` (batch_size 64, num_train
10,000, num_eval 5,000, num_variance_estimate 10,000, ``prune_dims.threshold = 0.05``):
variances use ddof=1, a latent is kept when its *standard deviation* is >= 0.05 (not its
variance), ties go to the lowest index, and ``factor_vae_score`` is the evaluation accuracy.
Fixes: disentanglement_lib reports ``num_active_dims`` as ``len`` of the boolean mask (always the
number of latents); here it is the number of kept latents. A zero-variance latent is always dropped
(disentanglement_lib would divide 0 by 0 with a threshold of 0). The fixed factor is drawn only
among the factors that vary on the grid; the groups are drawn at once (vectorised) and rendered in
blocks; the model sees ``encode_batch`` images a call.
"""

from __future__ import annotations

import numpy as np

from dislab.metrics._sampling import encode_factors, varying_factors


def sample_groups(data, rng: np.random.Generator, num_points: int, batch_size: int):
    """Factor batches (num_points, batch_size, K) in which factor ``fixed[i]`` takes one value
    (that of the batch's first point) across batch i."""
    k, varying = data.num_factors, varying_factors(data)
    fixed = varying[rng.integers(len(varying), size=num_points)]
    f = data.sample_factors(num_points * batch_size, rng).reshape(num_points, batch_size, k)
    rows = np.arange(num_points)
    f[rows, :, fixed] = f[rows, :1, fixed]
    return f, fixed


def group_variances(data, represent, rng: np.random.Generator, groups: np.ndarray,
                    encode_batch: int | None = None) -> np.ndarray:
    """Variance (ddof=1) of every latent within every group, shape (num_points, D); the model sees
    ``encode_batch`` images a call."""
    n, b, k = groups.shape
    per_block = max(1, 4096 // b)  # groups per block: the z's of a block are held at once
    out = []
    for s in range(0, n, per_block):
        z = encode_factors(data, represent, groups[s:s + per_block].reshape(-1, k), rng, encode_batch)
        out.append(z.reshape(-1, b, z.shape[-1]).var(axis=1, ddof=1))
    return np.concatenate(out)


def active_dims(global_variances, prune_threshold: float = 0.05) -> np.ndarray:
    """Latents kept by the score: standard deviation >= ``prune_threshold`` and not constant."""
    v = np.asarray(global_variances, dtype=np.float64)
    return (np.sqrt(v) >= prune_threshold) & (v > 0)


def votes(local_variances, fixed, global_variances, active, num_factors: int) -> np.ndarray:
    """Vote counts (num_factors, D): for each group, (fixed factor, latent of least normalised variance)."""
    lv = np.asarray(local_variances, dtype=np.float64)
    if not np.isfinite(lv).all():
        raise ValueError("codes contain NaN or infinite values")
    idx = np.flatnonzero(active)
    d = idx[np.argmin(lv[:, idx] / np.asarray(global_variances)[idx], axis=1)]
    out = np.zeros((num_factors, lv.shape[1]), dtype=np.int64)
    np.add.at(out, (np.asarray(fixed), d), 1)
    return out


def factor_vae_on_votes(train_votes, eval_votes, num_active: int) -> dict[str, float]:
    """Majority-vote classifier: latent d predicts argmax_k train_votes[k, d]."""
    train_votes, eval_votes = np.asarray(train_votes), np.asarray(eval_votes)
    if num_active == 0:
        return {"factor_vae_score": 0.0, "factor_vae_train_accuracy": 0.0, "factor_vae_num_active_dims": 0.0}
    cls, cols = np.argmax(train_votes, axis=0), np.arange(train_votes.shape[1])
    return {"factor_vae_score": float(eval_votes[cls, cols].sum() / eval_votes.sum()),
            "factor_vae_train_accuracy": float(train_votes[cls, cols].sum() / train_votes.sum()),
            "factor_vae_num_active_dims": float(num_active)}


def factor_vae_on_codes(group_codes, fixed, global_variances, *, num_train: int, num_factors: int | None = None,
                        prune_threshold: float = 0.05) -> dict[str, float]:
    """The score from group codes of any model: ``group_codes`` (n_points, batch_size, D), in group i
    factor ``fixed[i]`` is held fixed; ``global_variances`` (D,) are the latents' variances over the
    data. The first ``num_train`` groups train the majority vote, the rest evaluate it."""
    z, fixed = np.asarray(group_codes, dtype=np.float64), np.asarray(fixed)
    if z.ndim != 3 or z.shape[1] < 2 or fixed.shape != (len(z),) or np.shape(global_variances) != (z.shape[2],):
        raise ValueError(f"group codes {z.shape} must be (n_points, batch_size >= 2, D), fixed {fixed.shape} "
                         f"(n_points,) and global variances {np.shape(global_variances)} (D,)")
    if not 0 < num_train < len(z):
        raise ValueError(f"num_train={num_train} must leave training and evaluation groups out of {len(z)}")
    k = int(num_factors if num_factors is not None else fixed.max() + 1)
    return _score(z.var(axis=1, ddof=1), fixed, np.asarray(global_variances, dtype=np.float64), num_train, k,
                  prune_threshold)


def _score(local, fixed, global_variances, num_train, num_factors, prune_threshold):
    active = active_dims(global_variances, prune_threshold)
    if not active.any():
        return factor_vae_on_votes(None, None, 0)
    tv = votes(local[:num_train], fixed[:num_train], global_variances, active, num_factors)
    ev = votes(local[num_train:], fixed[num_train:], global_variances, active, num_factors)
    return factor_vae_on_votes(tv, ev, int(active.sum()))


def factor_vae_score(data, represent, rng: np.random.Generator, *, batch_size: int = 64, num_train: int = 10_000,
                     num_eval: int = 5_000, num_variance_estimate: int = 10_000, prune_threshold: float = 0.05,
                     encode_batch: int | None = None) -> dict[str, float]:
    """``factor_vae_score`` (evaluation accuracy), ``factor_vae_train_accuracy``, ``factor_vae_num_active_dims``."""
    if batch_size < 2 or num_train < 1 or num_eval < 1 or num_variance_estimate < 2:
        raise ValueError(f"batch_size={batch_size} (>= 2), num_train={num_train}, num_eval={num_eval}, "
                         f"num_variance_estimate={num_variance_estimate} (>= 2) out of range")
    codes = encode_factors(data, represent, data.sample_factors(num_variance_estimate, rng), rng, encode_batch)
    if not np.isfinite(codes).all():
        raise ValueError("codes contain NaN or infinite values")
    global_variances = codes.var(axis=0, ddof=1)
    if not active_dims(global_variances, prune_threshold).any():
        return factor_vae_on_votes(None, None, 0)
    groups, fixed = sample_groups(data, rng, num_train + num_eval, batch_size)
    local = group_variances(data, represent, rng, groups, encode_batch)
    return _score(local, fixed, global_variances, num_train, data.num_factors, prune_threshold)
