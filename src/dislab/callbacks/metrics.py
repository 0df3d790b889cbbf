"""Score metrics every N training steps and log them as ``during/<key>`` to every logger; where a
logger takes pictures, also log the traversals and reconstructions (``pictures/<name>``).

``during/<key>`` are estimates of the ``metrics_during`` list (``metrics=fast``: 2,000 points), never
logged under the final names: ``metrics/<key>`` holds only the final metrics (and the untrained
network's, at step 0), scored with the ``metrics`` list's settings, as ``metrics.json``."""

from __future__ import annotations

from pytorch_lightning import Callback

from dislab.evaluate import evaluation_scalars
from dislab.pictures import training_pictures
from dislab.trackers.log import log_pictures, log_scalars, takes_pictures


class MetricsDuringTraining(Callback):
    """``guard`` (the NaN guard) reads its flags first: no metrics of weights after a non-finite step."""

    def __init__(self, metrics: dict, data, every: int, eval_seed: int = 0, num_decomposition: int = 0, guard=None):
        self.metrics, self.data, self.every, self.eval_seed = metrics, data, every, eval_seed
        self.num_decomposition, self.guard = num_decomposition, guard

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if not (self.every and trainer.is_global_zero and step % self.every == 0 and step < trainer.max_steps):
            return
        if self.guard is not None:
            self.guard.check(trainer)
        values = evaluation_scalars(pl_module, self.data, self.metrics, self.eval_seed, self.num_decomposition,
                                    prefix="during")
        log_scalars(trainer.loggers, values, step)
        if takes_pictures(trainer.loggers):
            log_pictures(trainer.loggers, training_pictures(pl_module, self.data, self.eval_seed), step)
