"""Stop (or skip) a training step whose gradient is not finite, without waiting for the device.

Each optimizer step, the gradients are checked on their device (``torch._amp_foreach_non_finite_
check_and_unscale_``, the check GradScaler makes: one fused pass, exact, no overflowing sums) into
a flag that stays there. The host reads the flags only when it acts on them (``check``): on the
trainer's log steps (every ``log_every_n_steps``), before every checkpoint and every metrics
evaluation, and at the end of training, so a GPU step never waits for a NaN check.

``stop``: the first non-finite step and its loss terms are kept on the device; ``check`` raises
NonFiniteError naming them. A checkpoint is written only after a check, so the last checkpoint is
always one of finite weights (the run may go on a few steps past the bad one before it stops).
``skip``: the step changes nothing. A fused optimizer (``optimizer.fused=true``, the default) is
handed the flag as ``found_inf`` (as GradScaler does) and skips the update on the device: weights
and optimizer state stay exactly as they were. Any other optimizer falls back to a host check on
that step and drops its gradients (the weights stay as they were). Skipped steps are counted in
``train/skipped_steps``, logged when the count is read.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from pytorch_lightning import Callback


class NonFiniteError(RuntimeError):
    """A non-finite loss or gradient under nan_policy=stop."""


@dataclass
class _Record:
    """One optimizer's flags, on its device."""

    found: torch.Tensor  # this step's flag (float 0/1, as found_inf)
    bad: torch.Tensor  # any non-finite step so far (bool)
    first: torch.Tensor  # the first such step (int64, -1: none)
    skipped: torch.Tensor  # steps skipped (float)
    keys: tuple = ()  # names of the loss terms kept in ``terms``
    terms: torch.Tensor | None = None  # their values at the first non-finite step


class NanGuard(Callback):
    def __init__(self, policy: str = "stop", check_every: int | None = None):
        """``check_every``: steps between reads of the flags; None: the trainer's log_every_n_steps."""
        self.policy, self.check_every = policy, check_every
        self.skipped = 0  # as of the last read
        self._base = 0  # skipped before a resume
        self._records: dict[int, _Record] = {}
        self._one: dict[torch.device, torch.Tensor] = {}

    def _record(self, optimizer, device) -> _Record:
        rec = self._records.get(id(optimizer))
        if rec is None:
            rec = self._records[id(optimizer)] = _Record(
                torch.zeros((), device=device), torch.zeros((), dtype=torch.bool, device=device),
                torch.full((), -1, dtype=torch.int64, device=device), torch.zeros((), device=device))
            self._one[device] = torch.ones((), device=device)
        return rec

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        groups: dict[torch.dtype, list] = {}
        for g in optimizer.param_groups:
            for p in g["params"]:
                if p.grad is not None:
                    groups.setdefault(p.grad.dtype, []).append(p.grad)
        if not groups:
            return
        device = next(iter(groups.values()))[0].device
        rec = self._record(optimizer, device)
        rec.found.zero_()
        for grads in groups.values():  # sets found to 1 on a NaN or inf; multiplies the gradients by 1
            torch._amp_foreach_non_finite_check_and_unscale_(grads, rec.found, self._one[device])
        if self.policy == "skip":
            rec.skipped += rec.found
            if optimizer.defaults.get("fused"):
                optimizer.found_inf = rec.found  # read by the fused kernel: no update when 1
            elif rec.found.item():  # no device-side skip for this optimizer: decide here
                for g in optimizer.param_groups:
                    for p in g["params"]:
                        p.grad = None
            return
        terms = getattr(pl_module, "last_terms", None) or {}
        new = (rec.found > 0) & ~rec.bad
        rec.first = torch.where(new, trainer.global_step, rec.first)
        if terms:
            values = torch.stack([v.detach().float().reshape(()) for v in terms.values()])
            if tuple(terms) != rec.keys:  # a method logs other terms from now on (never, in practice)
                rec.keys, rec.terms = tuple(terms), torch.full_like(values, float("nan"))
            rec.terms = torch.where(new, values, rec.terms)
        rec.bad |= new

    def check(self, trainer) -> None:
        """Read the flags (waits for the device): ``stop`` raises NonFiniteError for the first
        non-finite step; ``skip`` logs ``train/skipped_steps`` when the count has changed."""
        if not self._records:
            return
        recs = list(self._records.values())
        if self.policy == "skip":
            count = self._count()
            if count != self.skipped:
                self.skipped = count
                for lg in trainer.loggers:
                    lg.log_metrics({"train/skipped_steps": count}, step=trainer.global_step)
            return
        firsts = [int(r.first) for r in recs]
        bad = [(f, i) for i, f in enumerate(firsts) if f >= 0]
        if not bad:
            return
        rec = recs[min(bad)[1]]
        values = rec.terms.tolist() if rec.terms is not None else []
        shown = ", ".join(f"{k}={v:.4g}" for k, v in zip(rec.keys, values, strict=True)) or "no loss terms recorded"
        raise NonFiniteError(f"non-finite loss or gradient at step {min(bad)[0]}: {shown} "
                             f"(nan_policy=stop; the last good checkpoint is kept)")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        every = self.check_every or trainer.log_every_n_steps
        if every and trainer.global_step % every == 0:
            self.check(trainer)

    def on_train_end(self, trainer, pl_module):
        self.check(trainer)

    def _count(self) -> int:
        return self._base + int(sum(float(r.skipped) for r in self._records.values()))

    def state_dict(self):
        return {"skipped": self._count()}

    def load_state_dict(self, state):
        self._base = self.skipped = int(state.get("skipped", 0))
