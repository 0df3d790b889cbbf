"""InfoMEC: InfoM (modularity), InfoE (explicitness), InfoC (compactness).

Hsu et al. 2023, "Disentanglement via Latent Quantization" (NeurIPS 2023; arXiv:2305.18378), its
section defining InfoMEC (the formulas below are written from the authors' code, which the paper
points to; equation numbers not checked here). With sources s_1..s_K (the factors) and latents
z_1..z_D, the normalised mutual information NMI_ij = I(s_i; z_j) / H(s_i), in [0, 1]. Inactive
latents are pruned first: latent j is active when its range (max - min over the sample) exceeds
1/20 of the largest latent range (for discrete latents: when it is not constant). Over the D_a
active latents,

    InfoM = (1/D_a sum_j max_i NMI_ij / sum_i NMI_ij - 1/K) / (1 - 1/K)      (each latent, one source)
    InfoC = (1/K sum_i max_j NMI_ij / sum_j NMI_ij - 1/D_a) / (1 - 1/D_a)    (each source, one latent)

both 1 for a one-to-one code and 0 when every latent (source) spreads its information evenly.
InfoE is the normalised predictive information of a logistic classifier of each source from all
latents: (H(s_i) - CE_i) / H(s_i), averaged over sources, with CE_i the in-sample cross-entropy of
the classifier and H(s_i) that of the same classifier given no input.

Checked against the authors' code (github.com/kylehkhsu/latent_quantization,
``disentangle/metrics/infomec.py``, ``compute_infomec``, ``compute_nmi``, ``compute_infoe``; earlier
``mutual_information.py``), as follows. Sources are label-encoded; the entropy is the plug-in entropy
of the sample (``mutual_info_score(s, s)``). ``estimator="ksg"`` (continuous latents, the authors'
default): each latent standardised, I(s_i; z_j) by scikit-learn's ``mutual_info_classif`` (the
k-nearest-neighbour estimator of Kraskov et al. 2004 as extended to a discrete variable by Ross 2014)
with ``n_neighbors=10``. ``estimator="binned"``: each latent in ``num_bins`` equal-width bins, then the
plug-in estimate, as the authors' earlier code offered (their training script logs it at 10, 20, 50
and 'auto' bins): it is sensitive to the number of bins, so compare only values with equal ``num_bins``.
``estimator="discrete"``: the latents are already discrete (quantised): every distinct value is a bin,
a latent is active when not constant, and InfoE one-hot encodes the latents, as the authors'
``discrete_latents=True``. InfoE: ``LogisticRegression`` without penalty, balanced class weights,
lbfgs, 100 iterations, tol 1e-4, on the standardised (or one-hot) latents, cross-entropy of its
``predict_proba`` on the same points (probabilities clipped to [eps, 1 - eps] as ``log_loss``); the
no-input classifier with balanced weights predicts the uniform distribution, so H(s_i) there is
log(number of values), which is what the authors' fit on zeros returns. The authors score 10,000
points (their validation set), all in-sample.

Differences: constant factors are dropped (H = 0); the estimator's jitter is seeded from the metric's
generator (unseeded there); where the authors' code divides 0 by 0 and returns NaN it is defined
here: an active latent with no information about any source is left out of InfoM's mean (as their
earlier ``compute_mutual_information_ratio`` did), a source no active latent informs counts 0 in
InfoC (evenly spread), with one source (one active latent) InfoM (InfoC) is 1 for every latent
(source) with information, and with no active latent both are 0. scikit-learn >= 1.7 fits a binary
source with the binary (sigmoid) model where the authors asked for a two-class softmax: the same
maximum-likelihood fit. Keys: ``infom``, ``infoc``, ``infoe``, ``infomec_num_active_latents``.
"""

from __future__ import annotations

import numpy as np

from dislab.metrics._sampling import check_codes, keep_varying, parallel_map, quiet_sklearn, sample_codes, seed_from
from dislab.metrics.information import discrete_entropy, discrete_mutual_info, histogram_discretize

ESTIMATORS = ("ksg", "binned", "discrete")


def _standardise(codes: np.ndarray) -> np.ndarray:
    """Centre and scale each latent to unit variance; a constant latent becomes 0 (as StandardScaler)."""
    std = codes.std(axis=0)
    return (codes - codes.mean(axis=0)) / np.where(std > 0, std, 1.0)


def nmi_matrix(codes, factors, *, estimator: str = "ksg", num_bins: int = 20, n_neighbors: int = 10,
               random_state: int = 0) -> np.ndarray:
    """NMI_ij = I(s_i; z_j) / H(s_i), shape (n_factors, n_latents), for varying factors."""
    codes, factors = check_codes(codes, factors)
    if estimator == "ksg":
        from sklearn.feature_selection import mutual_info_classif

        z = _standardise(codes)
        mi = np.stack([mutual_info_classif(z, factors[:, i], discrete_features=False, n_neighbors=n_neighbors,
                                           random_state=random_state) for i in range(factors.shape[1])])
    else:
        z = histogram_discretize(codes, num_bins) if estimator == "binned" else codes
        mi = discrete_mutual_info(z, factors).T
    return mi / discrete_entropy(factors)[:, None]


def active_latents(codes: np.ndarray, *, discrete: bool = False, prune_threshold: float = 1 / 20) -> np.ndarray:
    """Latents whose range exceeds ``prune_threshold`` times the largest range (discrete: that vary)."""
    ranges = codes.max(axis=0) - codes.min(axis=0)
    return ranges > 0 if discrete else ranges > prune_threshold * ranges.max()


def _concentration(nmi: np.ndarray) -> np.ndarray:
    """Per column, max / sum of the column, NaN where the column is all zero."""
    total = nmi.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, nmi.max(axis=0) / total, np.nan)


def infom(nmi: np.ndarray) -> float:
    """InfoM from the (sources, active latents) NMI matrix."""
    k = nmi.shape[0]
    ratio = _concentration(nmi)
    ratio = ratio[np.isfinite(ratio)]  # latents with no information about any source do not count
    if not len(ratio):
        return 0.0
    return 1.0 if k == 1 else float((ratio.mean() - 1 / k) / (1 - 1 / k))


def infoc(nmi: np.ndarray) -> float:
    """InfoC from the (sources, active latents) NMI matrix."""
    d = nmi.shape[1]
    if d == 0:
        return 0.0
    ratio = _concentration(nmi.T)
    if d == 1:
        return float(np.mean(np.isfinite(ratio)))
    ratio = np.where(np.isfinite(ratio), ratio, 1 / d)  # a source no latent informs: evenly spread
    return float((ratio.mean() - 1 / d) / (1 - 1 / d))


def cross_entropy(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """Mean -log p(y) of class probabilities (columns in the order of ``classes``), clipped as ``log_loss``."""
    eps = np.finfo(np.float64).eps
    p = proba[np.arange(len(y)), np.searchsorted(classes, y)]
    return float(-np.mean(np.log(np.clip(p, eps, 1 - eps))))


def predictive_information(features: np.ndarray, y: np.ndarray, *, max_iter: int = 100) -> float:
    """(H(y) - CE) / H(y) for an unpenalised, class-balanced logistic classifier of y from ``features``."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=np.inf, class_weight="balanced", solver="lbfgs", max_iter=max_iter, tol=1e-4)
    model.fit(features, y)
    null = np.log(len(model.classes_))
    return float((null - cross_entropy(y, model.predict_proba(features), model.classes_)) / null)


def infoe(codes, factors, *, discrete: bool = False, max_iter: int = 100, n_jobs: int | None = 2) -> float:
    """InfoE: mean over sources of the normalised predictive information from all latents."""
    if discrete:
        features = np.concatenate([(codes[:, [j]] == np.unique(codes[:, j])).astype(np.float64)
                                   for j in range(codes.shape[1])], axis=1)
    else:
        features = _standardise(codes)
    with quiet_sklearn():
        scores = parallel_map(lambda i: predictive_information(features, factors[:, i], max_iter=max_iter),
                              range(factors.shape[1]), n_jobs)
    return float(np.mean(scores))


def infomec_on_codes(codes, factors, *, estimator: str = "ksg", num_bins: int = 20, n_neighbors: int = 10,
                     prune_threshold: float = 1 / 20, max_iter: int = 100, random_state: int = 0,
                     n_jobs: int | None = 2) -> dict[str, float]:
    """InfoM, InfoC and InfoE of ``codes`` (n, D) against ``factors`` (n, K), all in-sample."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator={estimator!r} is not one of {ESTIMATORS}")
    if not 0 <= prune_threshold < 1:
        raise ValueError(f"prune_threshold={prune_threshold} must be in [0, 1)")
    codes, factors = check_codes(codes, factors)
    (factors,) = keep_varying(factors, what="InfoMEC")
    discrete = estimator == "discrete"
    nmi = nmi_matrix(codes, factors, estimator=estimator, num_bins=num_bins, n_neighbors=n_neighbors,
                     random_state=random_state)
    active = active_latents(codes, discrete=discrete, prune_threshold=prune_threshold)
    pruned = nmi[:, active]
    return {"infom": infom(pruned), "infoc": infoc(pruned),
            "infoe": infoe(codes, factors, discrete=discrete, max_iter=max_iter, n_jobs=n_jobs),
            "infomec_num_active_latents": float(active.sum())}


def infomec(data, represent, rng: np.random.Generator, *, num_train: int = 10_000, batch_size: int = 16,
            estimator: str = "ksg", num_bins: int = 20, n_neighbors: int = 10, prune_threshold: float = 1 / 20,
            max_iter: int = 100, n_jobs: int | None = 2, encode_batch: int | None = None) -> dict[str, float]:
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator={estimator!r} is not one of {ESTIMATORS}")
    codes, factors = sample_codes(data, represent, num_train, rng, batch_size, encode_batch)
    return infomec_on_codes(codes, factors, estimator=estimator, num_bins=num_bins, n_neighbors=n_neighbors,
                            prune_threshold=prune_threshold, max_iter=max_iter, random_state=seed_from(rng),
                            n_jobs=n_jobs)
