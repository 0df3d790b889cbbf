"""Training progress: a bar on a terminal, plain lines everywhere else (sweep jobs, SLURM, a pipe).

The bar shows ``step/steps``, the loss, steps/s and the time left; no "Epoch 0", no ``v_num``. It is
redrawn at most every ``interval`` seconds: Lightning's TQDM bar redraws on every step (a write to
stderr that W&B also captures, and the logged metrics gathered for the postfix), ~20 % of a step with a
network that costs nothing (py-spy, ``make bench``'s tiny network). Here a step costs a clock read; the
loss is read from the device only when something is shown.

Without a terminal (``interactive=False``) no carriage return is written: a line through the ``dislab``
logger every ``every`` steps (a tenth of the run by default) or every ``plain_interval`` seconds,
whichever comes first, prefixed by the job's name (``beta_tcvae-beta=6-seed=2``), so parallel jobs'
lines can be told apart in one log.
"""

from __future__ import annotations

import logging
import sys
import time

from pytorch_lightning.callbacks.progress import ProgressBar as _LightningProgressBar

log = logging.getLogger("dislab")


def duration(seconds: float) -> str:
    """``42.1 s``, ``3:05`` (m:ss) or ``2:03:05`` (h:mm:ss)."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _loss(pl_module) -> float | None:
    terms = getattr(pl_module, "last_terms", None) or {}
    loss = terms.get("loss")
    return None if loss is None else float(loss)  # one host read, only when shown


def plain_line(name: str, step: int, total: int, loss: float | None, rate: float | None) -> str:
    """``<name> step 120/300 (40%) loss 123.4 4.6 steps/s ETA 0:39`` (fields unknown yet are left out)."""
    parts = [name, f"step {step:,}/{total:,} ({100 * step // max(total, 1)}%)"]
    if loss is not None:
        parts.append(f"loss {loss:.4g}")
    if rate:
        parts.append(f"{rate:.3g} steps/s")
        if step < total:
            parts.append(f"ETA {duration((total - step) / rate)}")
    return " ".join(p for p in parts if p)


class ProgressBar(_LightningProgressBar):
    """A Lightning ``ProgressBar`` (so Lightning adds no TQDM bar of its own)."""

    def __init__(self, name: str = "", interactive: bool = True, interval: float = 1.0, every: int | None = None,
                 plain_interval: float = 60.0):
        super().__init__()
        self.name, self.interactive, self.interval = name, interactive, float(interval)
        self.every, self.plain_interval = every, float(plain_interval)
        self.bar, self._enabled = None, True
        self._next_time, self._next_step, self._last = 0.0, 0, (0, 0.0)

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer, pl_module):
        if not self._enabled:
            return
        total, start, now = int(trainer.max_steps), int(trainer.global_step), time.monotonic()
        self.total, self._last = total, (start, now)
        self.every = self.every or max(1, total // 10)
        self._next_step = (start // self.every + 1) * self.every
        if self.interactive:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=start, desc="training", unit=" steps", file=sys.stderr,
                            dynamic_ncols=True, leave=True, smoothing=0.1,
                            bar_format="{desc} {n_fmt}/{total_fmt} |{bar}| {rate_fmt}{postfix}, ETA {remaining}")
            self._next_time = now + self.interval
        else:
            self._next_time = now + self.plain_interval

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if not self._enabled:
            return
        now = time.monotonic()
        step = int(trainer.global_step)
        if self.interactive:
            if now >= self._next_time and self.bar is not None:
                self._next_time = now + self.interval
                self._draw(step, _loss(pl_module))
        elif step >= self._next_step or now >= self._next_time:
            self._line(step, _loss(pl_module), now)

    def on_train_end(self, trainer, pl_module):
        if not self._enabled:
            return
        step = int(trainer.global_step)
        if self.interactive and self.bar is not None:
            self._draw(step, _loss(pl_module))  # the last steps since the last redraw
            self.bar.close()
            self.bar = None
        elif not self.interactive and self._last[0] != step:
            self._line(step, _loss(pl_module), time.monotonic())

    def _draw(self, step: int, loss: float | None) -> None:
        self.bar.set_postfix_str("" if loss is None else f"loss {loss:.4g}", refresh=False)  # tqdm adds ", "
        self.bar.update(step - self.bar.n)

    def _line(self, step: int, loss: float | None, now: float) -> None:
        last_step, last_time = self._last
        rate = (step - last_step) / (now - last_time) if step > last_step and now > last_time else None
        log.info("%s", plain_line(self.name, step, self.total, loss, rate))
        self._last, self._next_time = (step, now), now + self.plain_interval
        self._next_step = (step // self.every + 1) * self.every
