"""Stop (or skip) a training step whose gradient is not finite, without waiting for the device.

Each optimizer step, the gradients are checked on their device by the check GradScaler makes
(``torch._amp_foreach_non_finite_check_and_unscale_``: one fused pass, exact, no overflowing sums),
into that step's own flag in a device buffer; the step's loss terms (tensors, on the device) are
kept beside it. The host reads the flags only when it acts on them (``check``): on the trainer's log
steps (every ``log_every_n_steps``), before every checkpoint and every metrics evaluation, at the
end of training and when the buffer is full, so a GPU step never waits for a NaN check.

``stop``: ``check`` raises NonFiniteError naming the first non-finite step and its loss terms. A
checkpoint is written only after a check, so the last checkpoint always holds finite weights (the
run itself may go on a few steps past the bad one before it stops).
``skip``: the step changes nothing. A fused optimizer (``optimizer.fused=true``, the default) is
handed the flag as ``found_inf``, as GradScaler does, and skips the update on the device: weights
and optimizer state stay exactly as they were. Any other optimizer falls back to a host check on
that step and drops its gradients. Skipped steps are counted in ``train/skipped_steps``, logged
when the count is read and has changed.
"""

from __future__ import annotations

import torch
from pytorch_lightning import Callback


class NonFiniteError(RuntimeError):
    """A non-finite loss or gradient under nan_policy=stop."""


class _Flags:
    """One optimizer's unread steps: a flag each (float 0/1, on the device), the step, the loss terms."""

    def __init__(self, device, capacity: int):
        self.buf = torch.zeros(capacity, device=device, dtype=torch.float32)  # also under 64-true precision
        self.steps: list[int] = []
        self.terms: list[dict] = []


class NanGuard(Callback):
    def __init__(self, policy: str = "stop", check_every: int | None = None, capacity: int = 1024):
        """``check_every``: steps between reads; None: the trainer's ``log_every_n_steps``. ``capacity``:
        unread steps kept at most (a full buffer is read at once)."""
        self.policy, self.check_every, self.capacity = policy, check_every, capacity
        self.skipped = 0  # as of the last read
        self._flags: dict[int, _Flags] = {}
        self._one: dict[torch.device, torch.Tensor] = {}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        by_dtype: dict[torch.dtype, list] = {}
        for g in optimizer.param_groups:
            for p in g["params"]:
                if p.grad is not None:
                    by_dtype.setdefault(p.grad.dtype, []).append(p.grad)
        if not by_dtype:
            return
        device = next(iter(by_dtype.values()))[0].device
        fl = self._flags.get(id(optimizer))
        if fl is None:
            fl = self._flags[id(optimizer)] = _Flags(device, self.capacity)
            self._one.setdefault(device, torch.ones((), device=device, dtype=torch.float32))
        elif len(fl.steps) == self.capacity:
            self.check(trainer)
        found = fl.buf[len(fl.steps)]
        for grads in by_dtype.values():  # found = 1 on a NaN or inf; the gradients are multiplied by 1
            torch._amp_foreach_non_finite_check_and_unscale_(grads, found, self._one[device])
        fl.steps.append(trainer.global_step)
        fl.terms.append(getattr(pl_module, "last_terms", None) or {})
        if self.policy == "skip":
            if optimizer.defaults.get("fused"):
                optimizer.found_inf = found  # the fused kernel leaves weights and state alone when it is 1
            elif found.item():  # no device-side skip for this optimizer: decided here
                for g in optimizer.param_groups:
                    for p in g["params"]:
                        p.grad = None

    def check(self, trainer) -> None:
        """Read the unread flags (waits for the device): ``stop`` raises NonFiniteError naming the first
        non-finite step; ``skip`` logs ``train/skipped_steps`` when the count has changed."""
        first = None
        for fl in self._flags.values():
            n = len(fl.steps)
            if not n:
                continue
            flags = fl.buf[:n].tolist()
            bad = next((i for i, f in enumerate(flags) if f), None)
            if bad is not None and (first is None or fl.steps[bad] < first[0]):
                first = fl.steps[bad], fl.terms[bad]
            self.skipped += int(sum(flags))
            fl.buf[:n].zero_()
            fl.steps.clear()
            fl.terms.clear()
        if first is None:
            return
        if self.policy == "stop":
            shown = ", ".join(f"{k}={float(v):.4g}" for k, v in first[1].items()) or "no loss terms recorded"
            raise NonFiniteError(f"non-finite loss or gradient at step {first[0]}: {shown} "
                                 f"(nan_policy=stop; the last good checkpoint is kept)")
        for lg in trainer.loggers:
            lg.log_metrics({"train/skipped_steps": self.skipped}, step=trainer.global_step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        every = self.check_every or trainer.log_every_n_steps
        if every and trainer.global_step % every == 0:
            self.check(trainer)

    def on_train_end(self, trainer, pl_module):
        self.check(trainer)

    def state_dict(self):
        return {"skipped": self.skipped}  # a checkpoint is written after a check

    def load_state_dict(self, state):
        self.skipped = int(state.get("skipped", 0))
