"""Latent traversals as an animated GIF: frame t shows, for every latent (a row, labelled with its
index and KL as in ``traversals.png``, under a row of the inputs) and every seed image (a column),
the seed's posterior mean with that latent set to its t-th value, decoded; the value is in the
frame's title (or, where each latent sweeps its own range, in the row's label). Plays there and
back again. The images and the plan come from ``dislab.viz.pictures`` (``traversal_images``, ``latent_plan``)."""

from __future__ import annotations

import io

import numpy as np

from dislab.viz.grid import labelled_grid
from dislab.viz.pictures import row_labels


def traversal_frames(images: np.ndarray, x: np.ndarray, plan: dict) -> list[np.ndarray]:
    """uint8 (H, W, 3) frames, one per swept value, from ``traversal_images``' (S, d, steps, C, H, W) of the
    seed images ``x`` (shown in the first row)."""
    s, d, steps = images.shape[:3]
    if steps < 2:
        raise ValueError(f"steps={steps}: a traversal needs at least 2 values")
    labels, order = row_labels(plan), plan["order"]
    faded = None if plan["active"] is None else np.r_[False, ~plan["active"][order]]
    frames = []
    for t in range(steps):
        block = np.concatenate([np.asarray(x, np.float32)[None, :s], images[:, order, t].swapaxes(0, 1)])
        if plan["shared"]:
            title, rows = f"traversal: z_j = {plan['values'][0, t]:+.2f}", labels
        else:
            title = f"traversal: value {t + 1} of {steps}"
            rows = [f"{lab} = {plan['values'][j, t]:+.2f}" for lab, j in zip(labels, order, strict=True)]
        frames.append(labelled_grid([block], row_labels=["input", *rows], faded_rows=faded, title=title,
                                    col_labels=[[f"seed {i + 1}" for i in range(s)]]))
    h, w = max(f.shape[0] for f in frames), max(f.shape[1] for f in frames)  # labels differ in width
    return [np.pad(f, ((0, h - f.shape[0]), (0, w - f.shape[1]), (0, 0)), constant_values=255) for f in frames]


def traversal_gif(frames: list[np.ndarray], *, duration_ms: int = 150, levels: int = 32) -> bytes:
    """GIF bytes of ``traversal_frames``, looping forever, forwards then backwards. Pixel values are
    rounded to ``levels`` per channel (0 and 255 kept): GIF's LZW compresses a decoder's smooth shades
    badly (a conv64 dSprites traversal: 0.53 MB at 256 grey levels, 0.11 MB at 32); the PNG is exact."""
    from PIL import Image

    step = 255 / (levels - 1)
    seq = [Image.fromarray((np.round(np.asarray(f) / step) * step + 0.5).astype(np.uint8))
           for f in [*frames, *frames[-2:0:-1]]]
    buf = io.BytesIO()
    seq[0].save(buf, format="GIF", save_all=True, append_images=seq[1:], duration=duration_ms, loop=0)
    return buf.getvalue()
