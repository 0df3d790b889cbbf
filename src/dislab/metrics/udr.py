"""UDR: Unsupervised Disentanglement Ranking, a population metric over runs.

Duan et al. 2020, "Unsupervised Model Selection for Variational Disentangled Representation
Learning", Sec. 3 (eq. 1-2): for two runs a and b on the same inputs, a similarity matrix R between
their latents (|Spearman correlation|, or |Lasso coefficient| regressing b's latents on a's), then
UDR_ab from the relative strength of each row's and column's largest entry, counting only
informative latents (mean KL to the prior > 0.01); a run's score is the median of its UDR_ab over
the other runs (in a sweep: over the other seeds of the same hyperparameters).

Checked against disentanglement_lib ``evaluation/udr/metrics/udr.py`` (``compute_udr_sklearn``,
``relative_strength_disentanglement``, ``lasso_correlation_matrix``, ``spearman_correlation_conv``):
each run's means are standardised (``StandardScaler``) and latents with KL <= 0.01 zeroed; Lasso with
alpha 0.1 fit as ``Lasso().fit(means_a, means_b)``, R = |coef|^T; R restricted to the informative
latents of a (rows) and b (columns); score = (mean over columns of max^2/sum + mean over rows of
max^2/sum) / 2 with 0 for an all-zero row or column (disentanglement_lib's averaging — the paper's
eq. 2 pools rows and columns, weighting by d_a + d_b); run i's score is the median over j != i of
UDR_ji. Fixes: a pair in which either run has no informative latent scores 0 (disentanglement_lib
takes the max of an empty matrix and crashes); a pair's Spearman entry for a constant latent is 0,
not NaN. Spearman is computed as the Pearson correlation of average ranks (= scipy's spearmanr).

Input: what each run writes to ``representation.npz`` — posterior ``means`` (n, D) on one shared
evaluation sample and ``kl`` (D,) the per-latent mean KL there.

Deterministic encoders (AE, AAE, InfoGAN's Q: ``stochastic = False``; their ``representation.npz`` has
``stochastic`` false and no ``kl``): the filter's purpose is to keep the latents that carry information
about x (a latent whose posterior is the prior for every x carries none). A point encoder has no
posterior variance: its KL to the prior is infinite for every latent, and the log-variance its network
may output is untrained, so the KL filter says nothing there. For a deterministic latent,
I(x; z_d) = H(z_d) > 0 exactly when z_d varies, so a point encoder's latent counts as active when its
mean is not constant on the evaluation sample (this drops InfoGAN's noise slots, which are zero).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from sklearn.linear_model import Lasso

from dislab.metrics._sampling import quiet_sklearn

VARIANTS = ("lasso", "spearman")

#: nats: a latent is active (informative) when its mean KL(q(z_j|x) || p(z_j)) on the evaluation sample
#: exceeds this, strictly (Duan et al. Sec. 3; disentanglement_lib ``compute_udr_sklearn``'s
#: ``kl_filter_threshold=0.01`` and ``np.greater(kl, 0.01)``). The run's pictures (kl.png, traversals)
#: mark latents with this same definition, ``active_latents``.
KL_ACTIVE = 0.01


#: seeds a cell needs before its UDR means something. A run's UDR is the median of its pairwise scores against
#: the other seeds of its cell (Duan et al. Sec. 3; disentanglement_lib ``compute_udr_sklearn``'s
#: ``model_scores``: the median over every other model), a median so that one partner that learnt another
#: code does not decide the score ("happy families are all alike": well disentangled runs agree with each
#: other, poorly disentangled ones each in their own way). With 2 seeds each run has one partner and both runs
#: get the same value (Spearman: exactly, R_ba = R_ab^T; Lasso nearly), so the cell's std is 0 and nothing is
#: ranked; with 3 the median of two scores is their mean, and one odd partner moves it as much as it likes. From
#: 4 seeds (3 partners) the median sets one odd partner aside.
MIN_SEEDS = 4


def seeds_warning(seeds: int) -> str | None:
    """The caveat for a cell's UDR over ``seeds`` seeds: None from ``MIN_SEEDS`` on (and below 2: no UDR)."""
    if not 2 <= seeds < MIN_SEEDS:
        return None
    what = "its one comparison, (nearly) the same for both runs" if seeds == 2 else \
        f"the median (= mean) of its {seeds - 1} comparisons"
    return (f"UDR over {seeds} seeds: each run's score is {what}, too few to rank runs; "
            f"use at least {MIN_SEEDS} seeds per setting (seed='range({MIN_SEEDS})')")


def active_latents(kl, threshold: float = KL_ACTIVE) -> np.ndarray:
    """Boolean mask of the active latents: mean KL > ``threshold`` (NaN counts as inactive)."""
    return np.asarray(kl, dtype=np.float64) > threshold


def relative_strength(r: np.ndarray) -> float:
    """(mean_b max_a R^2/sum_a R + mean_a max_b R^2/sum_b R) / 2; 0 where a row or column is all zero."""
    r = np.asarray(r, dtype=np.float64)
    if r.size == 0:
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        cols = np.nan_to_num(r.max(axis=0) ** 2 / r.sum(axis=0))
        rows = np.nan_to_num(r.max(axis=1) ** 2 / r.sum(axis=1))
    return float((cols.mean() + rows.mean()) / 2)


def spearman_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|Spearman correlation| between every latent of a (rows) and of b (columns); 0 for a constant one."""
    ra, rb = (rankdata(x, axis=0) for x in (a, b))
    ra, rb = ra - ra.mean(0), rb - rb.mean(0)
    na, nb = np.linalg.norm(ra, axis=0), np.linalg.norm(rb, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        c = (ra.T @ rb) / np.outer(na, nb)
    return np.abs(np.nan_to_num(c))


def lasso_matrix(a: np.ndarray, b: np.ndarray, *, alpha: float = 0.1) -> np.ndarray:
    """|coefficients| of the Lasso regression of b's latents on a's, as (latents of a, latents of b)."""
    with quiet_sklearn():
        return np.abs(Lasso(alpha=alpha).fit(a, b).coef_).T.reshape(a.shape[1], b.shape[1])


def _prepare(means, kl, kl_threshold):
    """Standardised means with inactive latents zeroed, and the activity mask: KL > ``kl_threshold``, or
    for a point encoder (``kl`` None) a mean that is not constant over the sample."""
    m = np.asarray(means, dtype=np.float64)
    kl = None if kl is None else np.asarray(kl, dtype=np.float64)
    if m.ndim != 2 or (kl is not None and kl.shape != (m.shape[1],)):
        raise ValueError(f"means {m.shape} must be (n, D) and kl {None if kl is None else kl.shape} (D,)")
    if not (np.isfinite(m).all() and (kl is None or np.isfinite(kl).all())):
        raise ValueError("means or kl contain NaN or infinite values")
    std = m.std(axis=0)
    z = (m - m.mean(axis=0)) / np.where(std > 0, std, 1.0)
    active = std > 0 if kl is None else active_latents(kl, kl_threshold)
    return z * active, active


def udr_matrix(means: list, kls: list, *, variant: str = "lasso", kl_threshold: float = KL_ACTIVE,
               alpha: float = 0.1) -> np.ndarray:
    """Pairwise UDR_ij (runs x runs, diagonal 0): similarity of run i's latents (rows of R) to run j's.
    ``kls``: each run's per-latent KL, or None for a point encoder (activity from the means, above)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r} must be one of {VARIANTS}")
    if len(means) != len(kls) or len(means) < 2:
        raise ValueError(f"UDR needs at least two runs with means and kl each, got {len(means)} and {len(kls)}")
    prepared = [_prepare(m, k, kl_threshold) for m, k in zip(means, kls, strict=True)]
    if len({p[0].shape[0] for p in prepared}) != 1:
        raise ValueError("all runs must be encoded on the same evaluation sample (same number of points)")
    n = len(prepared)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            (zi, ai), (zj, aj) = prepared[i], prepared[j]
            if i == j or not ai.any() or not aj.any():
                continue
            r = lasso_matrix(zi, zj, alpha=alpha) if variant == "lasso" else spearman_matrix(zi, zj)
            out[i, j] = relative_strength(r[np.ix_(ai, aj)])
    return out


def udr_on_codes(means: list, kls: list, *, kl_threshold: float = KL_ACTIVE, alpha: float = 0.1,
                 variants: tuple[str, ...] | list[str] = VARIANTS) -> dict[str, np.ndarray]:
    """Per-run scores ``udr_<variant>`` (n_runs,) and the pairwise matrices ``udr_<variant>_pairs``:
    run i's score is the median of UDR_ji over j != i."""
    out = {}
    for v in variants:
        m = udr_matrix(means, kls, variant=v, kl_threshold=kl_threshold, alpha=alpha)
        out[f"udr_{v}"] = np.array([np.median(np.delete(m[:, i], i)) for i in range(len(m))])
        out[f"udr_{v}_pairs"] = m
    return out


def udr(representations: list[dict], *, kl_threshold: float = KL_ACTIVE, alpha: float = 0.1,
        variants: tuple[str, ...] | list[str] = VARIANTS) -> list[dict[str, float]]:
    """UDR of each run from its ``representation.npz`` contents (``means``, ``kl``; all runs on the same
    evaluation sample; ``stochastic`` false: a point encoder, whose ``kl`` is not read): one dict per run,
    ``{"udr_lasso": ..., "udr_spearman": ...}``."""
    seeds = {int(np.asarray(r["eval_seed"])) for r in representations if "eval_seed" in r}
    if len(seeds) > 1:
        raise ValueError(f"runs were encoded on different evaluation samples (eval_seed {sorted(seeds)})")
    kls = [r["kl"] if bool(np.asarray(r.get("stochastic", True))) else None for r in representations]
    res = udr_on_codes([r["means"] for r in representations], kls,
                       kl_threshold=kl_threshold, alpha=alpha, variants=variants)
    return [{f"udr_{v}": float(res[f"udr_{v}"][i]) for v in variants} for i in range(len(representations))]
