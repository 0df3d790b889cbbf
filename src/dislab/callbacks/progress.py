"""Lightning's progress bar, redrawn at most every ``interval`` seconds.

Lightning's TQDM bar redraws on every training step (``refresh_rate=1``): a write to stderr, which
W&B also captures and forwards to its service, and the logged metrics gathered for the postfix.
With a network that costs nothing that was ~20 % of a step (py-spy, ``make bench``'s tiny network);
a GPU would pay it on every step. This bar looks the same to a person and costs a clock read per step.
"""

from __future__ import annotations

import time

from pytorch_lightning.callbacks import TQDMProgressBar


class ProgressBar(TQDMProgressBar):
    def __init__(self, interval: float = 1.0):
        super().__init__()
        self.interval, self._next, self._n = float(interval), 0.0, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._n = batch_idx + 1
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.interval
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_train_end(self, trainer, pl_module):
        bar = self.train_progress_bar
        if bar is not None and not bar.disable and bar.n != self._n:  # the last steps since the last redraw
            bar.n = self._n
            bar.set_postfix(self.get_metrics(trainer, pl_module))
        super().on_train_end(trainer, pl_module)
