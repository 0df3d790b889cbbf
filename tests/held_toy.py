"""Toy data a test can slow down from outside, to hold a SLURM job in training: while the file
``<hold>/<array task id>`` (``<hold>/0`` outside an array) exists, every batch takes ``pause``
seconds longer (the job still trains, checkpoints and handles its signals). Used as
``dataset._target_=held_toy.HeldToy +dataset.hold=DIR``."""

from __future__ import annotations

import os
import time
from pathlib import Path

from dislab.data.toy import Toy


class HeldToy(Toy):
    def __init__(self, hold: str, pause: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.hold, self.pause = Path(hold) / os.environ.get("SLURM_ARRAY_TASK_ID", "0"), pause

    def sample_observations_from_factors(self, factors, rng=None):
        if self.hold.exists():
            time.sleep(self.pause)
        return super().sample_observations_from_factors(factors, rng)
