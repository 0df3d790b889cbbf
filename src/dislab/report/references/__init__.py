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
    kind: str     # what the number is: "best reported", "mean ± std over runs", "read off a plot", "approximate"...
    source: str   # where it is printed: paper, table, page, or the code and how it was run
    short: str    # a short label for figures, e.g. "Lin+2020 T1"
    std: float | None = None  # the ± printed beside it, where one is
    row: str = ""             # the row's name in the source (``FactorVAE (10.0)``)
    setting: str = ""         # the hyperparameters of that row, in dislab's knobs, where the source gives them
    definition: str = ""      # the metric's definition (whose implementation, which variant)
    budget: str = ""          # the training budget behind the number, or that the source does not state it
    also: tuple = ()          # further dislab models the row stands for (DIP-VAE: its variant is not stated)

    def fits(self, model: str) -> bool:
        return model == self.model or model in self.also

    @property
    def cite(self) -> str:
        """The source with the row, the metric's definition and the budget."""
        parts = [self.source] + [f"{k}: {v}" for k, v in (("row", self.row), ("metric", self.definition),
                                                             ("budget", self.budget)) if v]
        return "; ".join(parts)

    @property
    def text(self) -> str:
        """``0.63 ± 0.06 (best reported, gamma=10)``."""
        value = f"{self.value:.2f}" + (f" ± {self.std:.2f}" if self.std is not None else "")
        return f"{value} ({', '.join(filter(None, (self.kind, self.setting)))})"


def available() -> list[str]:
    return sorted(p.stem for p in Path(__file__).parent.glob("*.py") if not p.stem.startswith("_"))


def load(name: str) -> ModuleType:
    """The reference module ``name``; an unknown name is a ``ValueError`` naming the known ones."""
    if name not in available():
        raise ValueError(f"--reference {name!r} is not a known reference; known: {', '.join(available())}")
    return importlib.import_module(f"{__name__}.{name}")
