"""Score metrics every N training steps and log them as ``metrics/<key>`` to every logger."""

from __future__ import annotations

from pytorch_lightning import Callback

from dislab.evaluate import compute_metrics


def log_scalars(loggers, values: dict[str, float], step: int, prefix: str = "metrics/"):
    for logger in loggers:
        logger.log_metrics({f"{prefix}{k}": v for k, v in values.items()}, step=step)


class MetricsDuringTraining(Callback):
    def __init__(self, metrics: dict, data, every: int, eval_seed: int = 0):
        self.metrics, self.data, self.every, self.eval_seed = metrics, data, every, eval_seed

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if not (self.every and self.metrics and step % self.every == 0 and step < trainer.max_steps):
            return
        values = compute_metrics(self.metrics, self.data, pl_module.represent, self.eval_seed)
        if trainer.is_global_zero:
            log_scalars(trainer.loggers, values, step)
