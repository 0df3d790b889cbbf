"""Tile image arrays into one picture: ``image_grid`` (bare) and ``labelled_grid`` (row and column
labels, a title and a caption, drawn with PIL, so a frame costs milliseconds)."""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

PAD = 0.5  # grey between tiles and in empty (NaN) cells
INK, FADED = (0, 0, 0), (150, 150, 150)


def image_grid(images: np.ndarray, pad: int = 2, pad_value: float = PAD) -> np.ndarray:
    """Returns uint8 (H', W') for one channel or (H', W', 3) for three; NaN images are empty (white) cells."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 5 or images.shape[2] not in (1, 3):
        raise ValueError(f"image_grid needs (rows, cols, 1|3, H, W), got {images.shape}")
    r, c, ch, h, w = images.shape
    out = np.full((ch, r * (h + pad) + pad, c * (w + pad) + pad), pad_value, dtype=np.float32)
    for i in range(r):
        for j in range(c):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            out[:, y:y + h, x:x + w] = np.nan_to_num(images[i, j], nan=1.0)
    out = np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8)
    return out[0] if ch == 1 else out.transpose(1, 2, 0)


@lru_cache(maxsize=8)
def font(size: int):
    """DejaVu Sans (shipped with matplotlib, found without importing it) at ``size`` pixels; PIL's own
    font where that fails."""
    from importlib.util import find_spec

    from PIL import ImageFont

    try:
        spec = find_spec("matplotlib")
        return ImageFont.truetype(f"{spec.submodule_search_locations[0]}/mpl-data/fonts/ttf/DejaVuSans.ttf", size)
    except (AttributeError, TypeError, OSError):
        return ImageFont.load_default(size)


def _text_size(draw, text: str, f) -> tuple[int, int]:
    if not text:
        return 0, 0
    left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=f)
    return right - left, bottom - top


def labelled_grid(blocks: Sequence[np.ndarray], *, row_labels: Sequence[str] = (),
                  col_labels: Sequence[Sequence[str]] | None = None, block_titles: Sequence[str] | None = None,
                  block_images: Sequence[np.ndarray] | None = None, title: str = "", caption: str = "",
                  faded_rows: Sequence[bool] | None = None, min_tile: int = 48, font_size: int = 12) -> np.ndarray:
    """Blocks of images side by side, each (rows, cols_b, C, H, W) in [0, 1] with the same rows and
    image shape (NaN images are empty cells), on white: ``row_labels`` left of the rows,
    ``col_labels[b]`` under block b's columns, ``block_titles`` above the blocks (after a thumbnail of
    ``block_images[b]``, a (C, H, W) image, where given), ``title`` on top
    and ``caption`` (may span lines) at the bottom. Rows in ``faded_rows`` are washed out and their
    labels grey. Images smaller than ``min_tile`` pixels are enlarged by a whole factor
    (nearest neighbour). Returns uint8 (H', W', 3)."""
    from PIL import Image, ImageDraw

    blocks = [np.asarray(b, dtype=np.float32) for b in blocks]
    if not blocks or any(b.ndim != 5 or b.shape[0] != blocks[0].shape[0] or b.shape[2:] != blocks[0].shape[2:]
                         for b in blocks):
        raise ValueError(f"blocks must share (rows, ·, C, H, W), got {[b.shape for b in blocks]}")
    rows, _, _, h, _ = blocks[0].shape
    if row_labels and len(row_labels) != rows:
        raise ValueError(f"{len(row_labels)} row labels for {rows} rows")
    k = max(1, -(-min_tile // h))
    faded = np.zeros(rows, bool) if faded_rows is None else np.asarray(faded_rows, bool)
    tiles = []
    for b in blocks:
        g = image_grid(b.repeat(k, axis=3).repeat(k, axis=4))
        g = np.repeat(g[..., None], 3, axis=2) if g.ndim == 2 else g
        step = (g.shape[0] - 2) // rows
        for i in np.flatnonzero(faded):
            g[i * step:(i + 1) * step + 2] = (0.35 * g[i * step:(i + 1) * step + 2] + 0.65 * 255).astype(np.uint8)
        tiles.append(g)
    f, small = font(font_size), font(max(8, font_size - 2))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    gap, margin = 3 * font_size // 2, font_size // 2
    left = max([_text_size(probe, s, f)[0] for s in row_labels] + [0]) + (margin if row_labels else 0)
    line = _text_size(probe, "Ag", f)[1] + 4
    thumb = h * k + 4 if block_images is not None else 0
    top = margin + (line + 4 if title else 0) + max(line if block_titles else 0, thumb)
    col_h = max([_text_size(probe, s, small)[1] for c in (col_labels or []) for s in c] + [0])
    bottom = (col_h + 6 if col_h else 0) + (_text_size(probe, caption, small)[1] + margin if caption else 0)
    width = margin + left + sum(t.shape[1] for t in tiles) + gap * (len(tiles) - 1) + margin
    width = max(width, _text_size(probe, title, f)[0] + 2 * margin, _text_size(probe, caption, small)[0] + 2 * margin)
    height = top + tiles[0].shape[0] + bottom + margin
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((margin, margin), title, fill=INK, font=f)
    x = margin + left
    step = (tiles[0].shape[0] - 2) / rows
    for b, t in enumerate(tiles):
        canvas.paste(Image.fromarray(t), (x, top))
        if block_images is not None:
            img = image_grid(np.asarray(block_images[b], np.float32)[None, None].repeat(k, axis=3).repeat(k, axis=4))
            canvas.paste(Image.fromarray(img).convert("RGB"), (x, top - thumb))
        if block_titles:
            at, anchor = ((x + img.shape[1] + 6, top - thumb // 2), "lm") if block_images is not None else \
                ((x + t.shape[1] // 2, top - 2), "md")
            draw.text(at, block_titles[b], fill=INK, font=f, anchor=anchor)
        labels = col_labels[b] if col_labels else []
        cw = (t.shape[1] - 2) / max(1, len(labels))
        for j, s in enumerate(labels):
            draw.text((x + 2 + (j + 0.5) * cw, top + t.shape[0] + 3), s, fill=INK, font=small, anchor="ma")
        x += t.shape[1] + gap
    for i, s in enumerate(row_labels):
        draw.text((margin + left - margin // 2, top + 2 + (i + 0.5) * step), s, fill=FADED if faded[i] else INK,
                  font=f, anchor="rm")
    if caption:
        draw.multiline_text((margin, top + tiles[0].shape[0] + (col_h + 6 if col_h else 0) + margin // 2), caption,
                            fill=INK, font=small)
    return np.asarray(canvas)
