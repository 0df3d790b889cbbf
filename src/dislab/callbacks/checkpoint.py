"""Write ``checkpoints/last.ckpt`` every N steps, atomically (temp file + rename)."""

from __future__ import annotations

import os
from pathlib import Path

from pytorch_lightning import Callback


class AtomicCheckpoint(Callback):
    def __init__(self, path, every: int = 1000, history=None):
        self.path, self.every, self.history = Path(path), every, history

    def save(self, trainer):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        trainer.save_checkpoint(tmp)
        if trainer.is_global_zero:
            os.replace(tmp, self.path)
            if self.history is not None:
                self.history.flush()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.every and trainer.global_step % self.every == 0 and trainer.global_step < trainer.max_steps:
            self.save(trainer)
