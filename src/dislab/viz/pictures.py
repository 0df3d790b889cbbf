"""Latent traversals, reconstructions and prior samples, labelled, from a model's numpy
``encode``/``decode`` and a few images.

A traversal decodes a seed image's posterior mean with one latent z_j replaced by each of a row of
values (as disentanglement_lib's ``visualize/visualize_model.py``, ``latent_traversal_1d_multi_dim``,
there over [-1, 1]). Here a Gaussian-posterior model sweeps every latent over the prior's [-2, 2]
(±2 sd), rows ordered by the latent's mean KL to the prior (largest first), and the latents UDR
counts as uninformative (``dislab.metrics.udr.active_latents``: KL <= 0.01 nats) faded. A point
encoder (``stochastic=False``: AE, AAE, InfoGAN) has no KL: rows in index order, each latent swept
over its own central 95 % on the evaluation sample (the prior's [-2, 2] where that is one value).
"""

from __future__ import annotations

import numpy as np

from dislab.metrics.udr import KL_ACTIVE, active_latents
from dislab.viz.grid import labelled_grid

STEPS, LIMIT = 9, 2.0  # 9 values: 0 is one of them
QUANTILES = (2.5, 97.5)  # a point encoder's sweep of each latent, on the evaluation sample


def latent_order(kl) -> np.ndarray:
    """Latent indices by KL, largest first (ties in index order)."""
    kl = np.asarray(kl, dtype=np.float64)
    return np.lexsort((np.arange(len(kl)), -kl))


def latent_plan(d: int, kl=None, codes=None, *, steps: int = STEPS, limit: float = LIMIT) -> dict:
    """What a traversal shows for ``d`` latents: ``kl`` (d,) or None where there is none (a point
    encoder, or a KL that is missing or not finite), ``active`` (d,) bool or None, ``order`` (the
    rows), ``values`` (d, steps) each row's sweep, and ``shared`` (every row sweeps the same values).
    With a KL: the prior's [-limit, limit] for every row. Without: each latent's central 95 % of
    ``codes`` (n, d) where given."""
    if kl is not None:
        kl = np.asarray(kl, dtype=np.float64).reshape(-1)
        if kl.shape != (d,):
            raise ValueError(f"kl has shape {kl.shape}, expected ({d},)")
        kl = kl if np.isfinite(kl).all() else None
    values = np.repeat(np.linspace(-limit, limit, steps)[None], d, axis=0)
    shared = True
    if kl is None and codes is not None:
        lo, hi = np.percentile(np.asarray(codes, dtype=np.float64), QUANTILES, axis=0)
        wide = hi - lo > 1e-6
        values[wide] = np.linspace(lo[wide], hi[wide], steps, axis=1)
        shared = not wide.any()
    return {"kl": kl, "active": None if kl is None else active_latents(kl),
            "order": latent_order(kl) if kl is not None else np.arange(d), "values": values, "shared": shared}


def row_labels(plan: dict) -> list[str]:
    """``z3  KL 2.31`` (``inactive`` added below UDR's threshold); without KL ``z3`` and, where rows
    sweep their own values, the range."""
    out = []
    for j in plan["order"]:
        s = f"z{j}"
        if plan["kl"] is not None:
            s += f"  KL {plan['kl'][j]:.3g}" + ("" if plan["active"][j] else "  inactive")
        elif not plan["shared"]:
            s += f"  [{plan['values'][j, 0]:.2g}, {plan['values'][j, -1]:.2g}]"
        out.append(s)
    return out


def traversal_codes(mu: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(S, d, steps, d): seed s's code ``mu[s]`` with latent j set to ``values[j, t]``."""
    mu, values = np.asarray(mu, dtype=np.float32), np.asarray(values, dtype=np.float32)
    s, d = mu.shape
    z = np.repeat(mu[:, None, None], d * values.shape[1], axis=1).reshape(s, d, values.shape[1], d).copy()
    for j in range(d):
        z[:, j, :, j] = values[j]
    return z


def traversal_images(model, x: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Images (S, d, steps, C, H, W) of ``traversal_codes`` from the posterior means of ``x`` (S images),
    decoded in one call."""
    z = traversal_codes(np.asarray(model.encode(x)[0]), values)
    imgs = np.asarray(model.decode(z.reshape(-1, z.shape[-1])))
    return imgs.reshape(*z.shape[:3], *imgs.shape[1:])


def _value_labels(plan: dict) -> list[str]:
    if plan["shared"]:
        return [f"{v:g}" for v in np.round(plan["values"][0], 3)]
    steps = plan["values"].shape[1]
    return [f"q{QUANTILES[0]:g}%", *[""] * (steps - 2), f"q{QUANTILES[1]:g}%"]


def traversal_title(plan: dict, kl_points: int | None = None) -> str:
    d = len(plan["order"])
    if plan["kl"] is None:
        return f"latent traversals: no KL (point encoder), rows in index order, {d} latents"
    on = f" on {kl_points:,} points" if kl_points else ""
    return (f"latent traversals: rows by KL to the prior (nats{on}); {int(plan['active'].sum())} of {d} "
            f"active (KL > {KL_ACTIVE:g}, as UDR), inactive rows faded")


def traversal_picture(images: np.ndarray, x: np.ndarray, plan: dict, *, kl_points: int | None = None) -> np.ndarray:
    """One block per seed image (shown above it): one row per latent (``plan``'s order and labels), the
    swept values under the columns. uint8 (H, W, 3)."""
    if plan["shared"]:
        sweep = f"z_j set to the value under each column (the prior's ±{plan['values'][0, -1]:g} sd)"
    else:
        sweep = (f"z_j swept over its central {QUANTILES[1] - QUANTILES[0]:g} % on the evaluation sample "
                 "(the range after the label)")
    caption = f"Row z_j: the seed image's posterior mean with {sweep}, decoded."
    return labelled_grid([b[plan["order"]] for b in images], row_labels=row_labels(plan),
                         col_labels=[_value_labels(plan)] * len(images), block_images=list(x[:len(images)]),
                         block_titles=[f"seed image {i + 1}" for i in range(len(images))],
                         title=traversal_title(plan, kl_points), caption=caption,
                         faded_rows=None if plan["active"] is None else ~plan["active"][plan["order"]])


def reconstructions(model, x: np.ndarray) -> np.ndarray:
    """Labelled rows: the originals, then their decoded posterior means. uint8 (H, W, 3)."""
    rec = model.decode(model.encode(x)[0])
    return labelled_grid([np.stack([x, rec])], row_labels=["original", "reconstruction"],
                         title="reconstructions: each original's posterior mean, decoded")


def samples(images: np.ndarray) -> np.ndarray:
    """An (r, c, C, H, W) block of decoded prior draws, titled. uint8 (H, W, 3)."""
    return labelled_grid([images], title="samples: decoded draws z ~ p(z) (the model's prior)")
