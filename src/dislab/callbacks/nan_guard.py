"""Stop (or skip) a training step whose loss or gradient is not finite."""

from __future__ import annotations

import torch
from pytorch_lightning import Callback


class NonFiniteError(RuntimeError):
    """A non-finite loss or gradient under nan_policy=stop."""


class NanGuard(Callback):
    """``stop``: raise NonFiniteError naming the step and the loss terms (the last good checkpoint
    stays as it is). ``skip``: drop the step's gradients so the optimizer leaves the weights alone,
    and count it in ``train/skipped_steps``."""

    def __init__(self, policy: str = "stop"):
        self.policy, self.skipped = policy, 0

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        # fast path: NaN and inf propagate through sums (0.07 ms for conv64 here; a per-tensor isfinite
        # 1.3 ms, an inf-norm 2 ms); the exact check only runs when the sum is not finite (or overflowed)
        if not params or torch.isfinite(torch.stack([p.grad.sum() for p in params]).sum()) or \
                all(bool(torch.isfinite(p.grad).all()) for p in params):
            return
        if self.policy == "skip":
            for p in params:
                p.grad = None
            self.skipped += 1
            for lg in trainer.loggers:
                lg.log_metrics({"train/skipped_steps": self.skipped}, step=trainer.global_step)
            return
        terms = getattr(pl_module, "last_terms", {}) or {}
        shown = ", ".join(f"{k}={float(v):.4g}" for k, v in terms.items()) or "no loss terms recorded"
        raise NonFiniteError(f"non-finite loss or gradient at step {trainer.global_step}: {shown} "
                             f"(nan_policy=stop; the last good checkpoint is kept)")

    def state_dict(self):
        return {"skipped": self.skipped}

    def load_state_dict(self, state):
        self.skipped = int(state.get("skipped", 0))
