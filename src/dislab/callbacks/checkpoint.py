"""Write ``checkpoints/last.ckpt`` every N steps, atomically (temp file + rename), and on the signals
a cluster sends before it ends a job.

SIGTERM (``scancel``, a time limit reached, pre-emption): Lightning notes it, this callback saves at
the end of the step, then Lightning stops the run (``train.py`` turns that into ``Interrupted``).
USR2 (submitit's warning, ``--signal=USR2@<signal_delay_s>``, before the time limit or on
pre-emption): saved at the end of the step, then the handler that was there before runs —
submitit's, which requeues the job when its rules allow (pre-emption; ``max_num_timeout`` left),
so it resumes from this checkpoint — and otherwise training goes on until it ends or SIGTERM comes.
In a SLURM job both signals are caught from the job's start (``catch_signals``): a USR2 before
training waits for the first step, a SIGTERM before training ends the run as training starts.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

import torch
from pytorch_lightning import Callback

log = logging.getLogger("dislab")
USR2_SYNC_EVERY = 20  # under DDP, ranks agree on a USR2 every this many steps (one small all-reduce)


class Interrupted(RuntimeError):
    """Training stopped on a signal after saving its checkpoint; the message says where and what to do."""


class Requeued(SystemExit):
    """submitit requeued the job after its checkpoint; a SystemExit, so submitit records no result."""


class AtomicCheckpoint(Callback):
    """Also keeps, inside the checkpoint, the torch RNG state (so a resumed run draws the same
    noise) and ``identity``: what the weights belong to (model, net, z_dim, data set), checked
    before a resume, and ``budgets``: the step budget of each segment that extended the run (``extend=true``).
    ``guard`` (the NaN guard) reads its flags before every save, so a checkpoint never holds weights from after
    a non-finite step."""

    def __init__(self, path, every: int = 1000, history=None, identity: dict | None = None, guard=None,
                 budgets: list[int] | None = None):
        self.path, self.every, self.history, self.identity = Path(path), every, history, identity or {}
        self.guard, self.budgets = guard, list(budgets or [])

    def state_dict(self):
        return {"identity": self.identity, "torch_rng": torch.get_rng_state(), "budgets": self.budgets}

    def load_state_dict(self, state):
        torch.set_rng_state(state["torch_rng"])

    def save(self, trainer):
        if self.guard is not None:
            self.guard.check(trainer)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        trainer.save_checkpoint(tmp, weights_only=False)  # all of it (Lightning logs a line when unsaid)
        if trainer.is_global_zero:
            os.replace(tmp, self.path)
            if self.history is not None:
                self.history.flush()

    def on_train_start(self, trainer, pl_module):
        catch_signals()
        if _seen[signal.SIGTERM]:
            raise Interrupted(f"SIGTERM before training started (at step {trainer.global_step}); re-run the same "
                              f"command to {'resume' if trainer.global_step else 'start it again'}")

    def _usr2_now(self, trainer) -> bool:
        if trainer.world_size > 1:  # every rank must save at the same step
            if trainer.global_step % USR2_SYNC_EVERY:
                return False
            return bool(trainer.strategy.reduce_boolean_decision(_seen[signal.SIGUSR2], all=False))
        return _seen[signal.SIGUSR2]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        usr2 = self._usr2_now(trainer)
        if trainer.received_sigterm or usr2 or (self.every and step % self.every == 0 and step < trainer.max_steps):
            self.save(trainer)
        if usr2:
            _seen[signal.SIGUSR2] = False
            log.warning("USR2 at step %d (time limit near, or pre-emption): checkpoint saved to %s", step, self.path)
            self._chain(step)

    def _chain(self, step: int):
        chain_usr2(step, str(self.path))


_seen = {signal.SIGUSR2: False, signal.SIGTERM: False}
_previous = {}


def chain_usr2(step: int, saved: str) -> None:
    """After a USR2's checkpoints (``saved`` says where): run the USR2 handler that was there before (submitit's:
    requeue, or not)."""
    previous = _previous.get(signal.SIGUSR2)
    if not callable(previous):
        return
    try:
        previous(signal.SIGUSR2, None)
    except SystemExit as e:  # submitit requeued the job and exits
        raise Requeued(f"USR2 at step {step}: checkpoint saved to {saved}; submitit requeued the job, "
                       f"which resumes from it") from e
    except Exception as e:  # noqa: BLE001 submitit: not requeued ("timed-out too many times"...)
        log.warning("%s; training goes on until SIGTERM or the end", str(e).strip().splitlines()[-1].rstrip("."))


def _note(signum, frame):
    _seen[signum] = True


def catch_signals(sigterm: bool = False) -> None:
    """From now on USR2 is only noted: the next step end saves a checkpoint, then runs the handler that
    was there before (submitit's). A SLURM job calls this at its start (``dislab.sweep.slurm``) with
    ``sigterm=True``, so that a warning before training waits for the first step instead of ending
    the job, and a SIGTERM before training (which submitit ignores) ends the run as training starts."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGUSR2, signal.SIGTERM) if sigterm else (signal.SIGUSR2,):
        if signal.getsignal(signum) is not _note:
            _previous[signum] = signal.signal(signum, _note)
