"""Write ``checkpoints/last.ckpt`` every N steps, atomically (temp file + rename)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from pytorch_lightning import Callback


class AtomicCheckpoint(Callback):
    """Also checkpoints on SIGTERM (SLURM pre-emption) and keeps, inside the checkpoint, the torch
    RNG state (so a resumed run draws the same noise) and ``identity``: what the weights belong to
    (model, net, z_dim, data set), checked before a resume. ``guard`` (the NaN guard) reads its
    flags before every save, so a checkpoint never holds weights from after a non-finite step."""

    def __init__(self, path, every: int = 1000, history=None, identity: dict | None = None, guard=None):
        self.path, self.every, self.history, self.identity = Path(path), every, history, identity or {}
        self.guard = guard

    def state_dict(self):
        return {"identity": self.identity, "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state):
        torch.set_rng_state(state["torch_rng"])

    def save(self, trainer):
        if self.guard is not None:
            self.guard.check(trainer)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        trainer.save_checkpoint(tmp)
        if trainer.is_global_zero:
            os.replace(tmp, self.path)
            if self.history is not None:
                self.history.flush()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if trainer.received_sigterm or (self.every and step % self.every == 0 and step < trainer.max_steps):
            self.save(trainer)
