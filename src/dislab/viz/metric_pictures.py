"""Metric pictures: the factor x latent mutual-information heat map MIG is computed from
(``mi_table`` + ``mutual_info_heatmap``), and per-latent KL bars with UDR's notion of active
(``kl_bars``). Arrays in, uint8 RGB arrays out (``dislab.atomic.to_png`` turns one into PNG bytes)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from dislab.metrics._sampling import check_codes
from dislab.metrics.information import discrete_entropy, discrete_mutual_info, histogram_discretize
from dislab.metrics.udr import KL_ACTIVE, active_latents

#: a factor's best latent is marked only where it stands out: its I(z; v_k) / H(v_k) exceeds every
#: other latent's by at least this much, i.e. the factor's own term in MIG is >= 0.1. (Chance level:
#: the histogram estimator's bias, about (bins - 1)(values - 1) / 2n nats, is < 0.01 of H(v_k) for
#: dSprites' factors at n = 10,000 and 20 bins.)
STANDS_OUT = 0.1


def mi_table(codes, factors, *, num_bins: int = 20) -> dict:
    """What the heat map shows, from the arrays MIG scores (Chen et al. 2018, eq. 6; the computation of
    ``dislab.metrics.mig.mig_on_codes``): ``factors`` (the kept column indices: factors constant in the
    sample have no entropy and are left out, as MIG leaves them out), ``mi`` (D, K') I(z_j; v_k) / H(v_k),
    ``gap`` (K') each factor's MIG term (best minus second-best, over H), ``mig`` (their mean: equal to
    ``mig_on_codes``), ``best`` (K') the best latent where it stands out (gap >= ``STANDS_OUT``), else -1."""
    codes, factors = check_codes(codes, factors)
    h = discrete_entropy(factors)
    keep = np.flatnonzero(h > 0)
    if not len(keep):
        raise ValueError("the MI heat map needs at least one factor that varies in the sample")
    raw = discrete_mutual_info(histogram_discretize(codes, num_bins), factors[:, keep])
    top = np.sort(raw, axis=0)[::-1]
    gap = (top[0] - (top[1] if len(top) > 1 else 0)) / h[keep]
    best = np.where(gap >= STANDS_OUT, np.argmax(raw, axis=0), -1)
    return {"factors": keep, "mi": raw / h[keep], "gap": gap, "mig": float(np.mean(gap)), "best": best}


def _figure_to_array(fig) -> np.ndarray:
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    import matplotlib.pyplot as plt

    plt.close(fig)
    return img


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def mutual_info_heatmap(table: dict, factor_names: Sequence[str], *, sample: str = "", dpi: int = 100) -> np.ndarray:
    """Heat map of ``mi_table``'s I(z_j; v_k) / H(v_k), latents as rows and factors as columns, each cell
    annotated, each factor's MIG term under its name, its best latent outlined where it stands out, MIG
    in the title; ``sample`` says which points it was computed on. Returns uint8 (H, W, 3)."""
    from matplotlib.patches import Rectangle

    plt = _pyplot()
    m, keep = table["mi"], table["factors"]
    d, k = m.shape
    names = [str(factor_names[i]) for i in keep]
    left_out = [str(n) for i, n in enumerate(factor_names) if i not in set(keep.tolist())]
    fig, ax = plt.subplots(figsize=(2.6 + 0.95 * k, 1.5 + 0.36 * d), dpi=dpi)
    im = ax.imshow(m, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for j in range(d):
        for i in range(k):
            ax.text(i, j, f"{m[j, i]:.2f}", ha="center", va="center", fontsize=7,
                    color="black" if m[j, i] > 0.6 else "white")
    for i, j in enumerate(table["best"]):
        if j >= 0:
            ax.add_patch(Rectangle((i - 0.5, j - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    ax.set_xticks(range(k), [f"{n}\ngap {g:.3f}" for n, g in zip(names, table["gap"], strict=True)], fontsize=8)
    ax.set_yticks(range(d), [f"z{j}" for j in range(d)], fontsize=8)
    ax.set_title(f"MIG = {table['mig']:.4f}" + (f"\n{sample}" if sample else ""), fontsize=9)
    note = f"red: a factor's best latent, where it leads the next by >= {STANDS_OUT:g} (gap = its MIG term)"
    if left_out:
        note += f"\nleft out (constant in the sample, as in MIG): {', '.join(left_out)}"
    fig.text(0.01, 0.01, note, fontsize=7, va="bottom")
    fig.colorbar(im, ax=ax, fraction=0.05, pad=0.03).set_label("I(z; v) / H(v)", fontsize=8)
    fig.tight_layout(rect=(0, 0.07 + 0.03 * bool(left_out), 1, 1))
    return _figure_to_array(fig)


def kl_bars(kl: np.ndarray, *, kl_points: int | None = None, dpi: int = 100) -> np.ndarray:
    """Bar chart (log scale) of each latent's mean KL(q(z_j|x) || p(z_j)); the latents UDR counts as
    active (``active_latents``: KL > ``KL_ACTIVE``) in colour, the rest grey, the threshold dashed.
    uint8 (H, W, 3)."""
    plt = _pyplot()
    kl = np.asarray(kl, dtype=np.float64).reshape(-1)
    active = active_latents(kl)
    shown = np.maximum(kl, 1e-6)
    fig, ax = plt.subplots(figsize=(2.4 + 0.45 * len(kl), 3.2), dpi=dpi)
    ax.bar(range(len(kl)), shown, color=np.where(active, "tab:blue", "0.75"))
    ax.set_yscale("log")
    ax.set_ylim(min(KL_ACTIVE / 10, shown.min() / 2), max(1.0, shown.max()) * 10)
    ax.axhline(KL_ACTIVE, color="k", linestyle="--", linewidth=0.8, label=f"UDR's threshold, {KL_ACTIVE:g} nats")
    for j, v in enumerate(kl):
        ax.text(j, shown[j] * 1.15, f"{v:.3g}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(kl)), [f"z{j}" for j in range(len(kl))], fontsize=8)
    ax.set_ylabel("mean KL to the prior [nats]", fontsize=8)
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    on = f", on {kl_points:,} points" if kl_points else ""
    ax.set_title(f"{int(active.sum())} of {len(kl)} latents active\n(mean KL > {KL_ACTIVE:g} nats, as UDR; grey: "
                 f"inactive{on})", fontsize=9)
    fig.tight_layout()
    return _figure_to_array(fig)
