"""Metric pictures: the factor x latent mutual-information heat map that MIG is computed from, and
per-latent KL bars. Arrays in, uint8 RGB arrays out (``dislab.io.to_png`` turns one into PNG bytes)."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _figure_to_array(fig) -> np.ndarray:
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    import matplotlib.pyplot as plt

    plt.close(fig)
    return img


def mutual_info_heatmap(mi: np.ndarray, factor_names: Sequence[str] | None = None, *,
                        factor_entropy: np.ndarray | None = None, title: str | None = None,
                        dpi: int = 100) -> np.ndarray:
    """Heat map of I(z_j; v_k), latents as rows and factors as columns, each cell annotated; with
    ``factor_entropy`` (K,) the values are I / H(v_k), the quantities MIG compares (0..1). The best
    latent of each factor is outlined and the title gives MIG. Returns uint8 (H, W, 3).

    ``mi`` comes from ``dislab.metrics.mig.mutual_info_matrix(codes, factors)`` and the entropies from
    ``dislab.metrics._sampling.discrete_entropy(factors)`` (or ``mig_chen.mutual_info_chen``)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    m = np.asarray(mi, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"mutual information must be (n_latents, n_factors), got {m.shape}")
    d, k = m.shape
    names = list(factor_names) if factor_names is not None else [f"v{i}" for i in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} factor names for {k} factors")
    label = "I(z; v) [nats]"
    if factor_entropy is not None:
        h = np.asarray(factor_entropy, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            m = np.where(h > 0, m / h, 0.0)
        label = "I(z; v) / H(v)"
    top = np.sort(m, axis=0)[::-1]
    gaps = top[0] - (top[1] if d > 1 else 0)
    fig, ax = plt.subplots(figsize=(1.1 + 0.9 * k, 0.9 + 0.38 * d), dpi=dpi)
    vmax = 1.0 if factor_entropy is not None else max(float(m.max()), 1e-12)
    im = ax.imshow(m, cmap="viridis", vmin=0, vmax=vmax, aspect="auto")
    for j in range(d):
        for i in range(k):
            ax.text(i, j, f"{m[j, i]:.2f}", ha="center", va="center", fontsize=7,
                    color="black" if m[j, i] > 0.6 * vmax else "white")
    for i, j in enumerate(np.argmax(m, axis=0)):
        ax.add_patch(Rectangle((i - 0.5, j - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5))
    ax.set_xticks(range(k), names, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(d), [f"z{j}" for j in range(d)], fontsize=8)
    ax.set_title(title if title is not None else
                 (f"MIG = {np.mean(gaps):.3f}" if factor_entropy is not None else "mutual information"), fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.05, pad=0.03).set_label(label, fontsize=8)
    fig.tight_layout()
    return _figure_to_array(fig)


def kl_bars(kl: np.ndarray, *, threshold: float = 0.01, title: str | None = None, dpi: int = 100) -> np.ndarray:
    """Bar chart of the mean KL(q(z_j|x) || p(z_j)) of each latent; latents above ``threshold`` (the
    ones UDR counts as informative) in colour, the rest grey, the threshold dashed. uint8 (H, W, 3)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    kl = np.asarray(kl, dtype=np.float64).reshape(-1)
    fig, ax = plt.subplots(figsize=(1.2 + 0.35 * len(kl), 2.4), dpi=dpi)
    ax.bar(range(len(kl)), kl, color=np.where(kl > threshold, "tab:blue", "0.7"))
    ax.axhline(threshold, color="k", linestyle="--", linewidth=0.8)
    ax.set_xticks(range(len(kl)), [f"z{j}" for j in range(len(kl))], fontsize=8)
    ax.set_ylabel("KL [nats]", fontsize=8)
    ax.set_title(title if title is not None else f"{int((kl > threshold).sum())} of {len(kl)} latents active",
                 fontsize=9)
    fig.tight_layout()
    return _figure_to_array(fig)
