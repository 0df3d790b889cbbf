"""Published numbers a report can lay beside a study's own: one module per reference setting.

A module here defines ``TITLE``, ``DATASET`` (the data set the numbers were measured on), ``STEPS``
(the training budget of the setting), ``METRICS`` (the metric keys a reproduction report shows) and
``VALUES``: a list of :class:`Published`, each with its source. A number goes in only with a
source a reader can check; none is derived or guessed.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType


@dataclass(frozen=True)
class Published:
    model: str    # dislab's model name (the YAML stem): vae, beta_vae, beta_tcvae, factor_vae, ...
    metric: str   # dislab's metric key: mig, mig_chen, factor_vae_score, ...
    value: float
    kind: str     # what the number is: "best reported", "mean", "approximate", ...
    source: str   # where it is printed: paper, table, page, or the code and how it was run
    short: str    # a short label for figures, e.g. "Lin+2020 T1"


def available() -> list[str]:
    return sorted(p.stem for p in Path(__file__).parent.glob("*.py") if not p.stem.startswith("_"))


def load(name: str) -> ModuleType:
    """The reference module ``name``; an unknown name is a ``ValueError`` naming the known ones."""
    if name not in available():
        raise ValueError(f"--reference {name!r} is not a known reference; known: {', '.join(available())}")
    return importlib.import_module(f"{__name__}.{name}")
