"""Look at a data set: ``python -m dislab.preview dataset=<name> [out=preview.png] [key=value ...]``.

Writes one PNG: ``rows`` rows of random samples, then, for each factor, one row sweeping that
factor over its grid (all values, or ``cols`` evenly spaced ones) with the other factors fixed at
those of the first sample. Every image of a sweep row is drawn with the same random generator
state, so random parts (colours, noise, background crops, instances) stay fixed along the row.
Each row is labelled on the left. A data set without factors (``has_factors`` False) shows random
samples only.

The data set's config is composed from ``conf/dataset/<name>.yaml`` with Hydra's compose API, so
any other ``key=value`` overrides that config (``path=/data/3dshapes.h5``; ``dataset.path=...``
works too). Own options: ``out`` (preview.png), ``seed`` (0), ``cols`` (10), ``rows`` (2).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from dislab.conf import CONF
from dislab.viz.grid import image_grid

LABEL_WIDTH, PAD = 120, 2
OWN = {"out": "preview.png", "seed": "0", "cols": "10", "rows": "2"}


def compose_dataset(name: str, overrides=(), conf: Path = CONF):
    """The config of ``conf/dataset/<name>.yaml`` with ``overrides`` (``key=value``) applied."""
    from hydra import compose, initialize_config_dir

    if not (conf / "dataset" / f"{name}.yaml").exists():
        known = ", ".join(sorted(p.stem for p in (conf / "dataset").glob("*.yaml")))
        raise ValueError(f"dataset={name} is not a data set; known: {known}")
    overrides = [o if o.lstrip("+~").startswith("dataset.") else _prefixed(o) for o in overrides]
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        return compose(config_name=f"dataset/{name}", overrides=overrides).dataset


def _prefixed(override: str) -> str:
    """``path=x`` -> ``dataset.path=x`` (the group file's keys sit under ``dataset``); keeps ``+``/``~``."""
    op = override[: len(override) - len(override.lstrip("+~"))]
    return f"{op}dataset.{override[len(op):]}"


def preview_rows(data, seed: int = 0, cols: int = 10, rows: int = 2) -> tuple[np.ndarray, list[str]]:
    """Images (R, cols, 3, H, W) and one label per row."""
    rng = np.random.default_rng([seed, 0])
    factors = data.sample_factors(rows * cols, rng)
    x = data.sample_observations_from_factors(factors, rng)
    grid, labels = [x.reshape(rows, cols, *x.shape[1:])], ["samples"] + [""] * (rows - 1)
    if getattr(data, "has_factors", True):
        blank = np.full((1, *x.shape[1:]), 0.5, np.float32)
        for k, (name, size) in enumerate(zip(data.factor_names, data.factor_sizes, strict=True)):
            values = np.arange(size) if size <= cols else np.round(np.linspace(0, size - 1, cols)).astype(np.int64)
            row = []
            for v in values:
                f = factors[:1].copy()
                f[0, k] = v
                row.append(data.sample_observations_from_factors(f, np.random.default_rng([seed, 1])))
            row += [blank] * (cols - len(values))
            grid.append(np.concatenate(row)[None])
            labels.append(f"{name} ({size})")
    images = np.concatenate(grid)
    if images.shape[2] == 1:
        images = np.repeat(images, 3, axis=2)
    return images, labels


def preview_image(data, seed: int = 0, cols: int = 10, rows: int = 2) -> np.ndarray:
    """The labelled preview as uint8 (H, W, 3)."""
    from PIL import Image, ImageDraw

    images, labels = preview_rows(data, seed, cols, rows)
    grid = image_grid(images, pad=PAD)
    canvas = Image.new("RGB", (LABEL_WIDTH + grid.shape[1], grid.shape[0]), (255, 255, 255))
    canvas.paste(Image.fromarray(grid), (LABEL_WIDTH, 0))
    draw, h = ImageDraw.Draw(canvas), images.shape[3]
    for i, text in enumerate(labels):
        draw.text((4, PAD + i * (h + PAD) + h // 2 - 6), text, fill=(0, 0, 0))
    return np.asarray(canvas)


def main(argv: list[str] | None = None) -> Path:
    from hydra.utils import instantiate

    from dislab import atomic

    args = sys.argv[1:] if argv is None else argv
    bad = [a for a in args if "=" not in a]
    own = dict(OWN)
    name, overrides = None, []
    for a in args:
        if "=" not in a:
            continue
        key, value = a.split("=", 1)
        if key == "dataset":
            name = value
        elif key in own:
            own[key] = value
        else:
            overrides.append(a)
    if bad or not name:
        raise SystemExit("usage: python -m dislab.preview dataset=<name> [out=preview.png] [seed=0] "
                         "[cols=10] [rows=2] [key=value ...]")
    data = instantiate(compose_dataset(name, overrides))
    out = Path(own["out"])
    atomic.write_png(out, preview_image(data, int(own["seed"]), int(own["cols"]), int(own["rows"])))
    print(f"wrote {out}: {type(data).__name__} {dict(zip(data.factor_names, data.factor_sizes, strict=True))}")
    return out


if __name__ == "__main__":
    main()
