"""One LightningDataModule for any ``GroundTruthData``.

Batch t of a run draws from ``np.random.default_rng([seed, t])`` (DDP rank r > 0:
``[seed, t, r]``), so a resumed run sees exactly the batches an uninterrupted one would. Under DDP
``batch_size`` is per device.

Where batches are rendered is the ``dataset.device`` knob (``auto``: the trainer's device):

* on a GPU, by the data set's torch renderer (``paint``), ``RENDER_IMAGES`` images (several steps'
  batches) at a time: each step's factors and random parameters are drawn on the host from that
  step's generator, as the numpy renderer draws them, and go over in one small copy; the images are
  painted on the device, in the order of the training stream, so nothing waits and no batch
  crosses the bus (Lightning's transfer to the device is then a no-op);
* on the host (a CPU trainer, or ``dataset.device=cpu``, or a data set that does not paint), whole
  by numpy (faster than the torch renderers on a CPU: README, Performance).

With ``pairs`` (a ``dislab.data.pairs.PairSampler``, for the weakly-supervised methods) each batch
item is a pair: a batch is (images (B, 2, C, H, W), changed factors (B, K) bool), its 2B images
rendered whole, on the host or painted on the device by the same rules.

Either way one background thread works up to ``prefetch`` items ahead (host batches, or the draws
of the next steps to paint), so it overlaps the training step (numpy releases the GIL in its array
work; torch runs its kernels without it).
"""

from __future__ import annotations

import itertools
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, IterableDataset

from dislab.data._device import check_device, draw, paint_device, paint_rows, upload
from dislab.data.ground_truth import GroundTruthData
from dislab.data.pairs import PairSampler

RENDER_IMAGES = 1024  # images a device renders at once (whole batches: max(1, this // batch_size) steps)


class _Batches(IterableDataset):
    def __init__(self, data: GroundTruthData, batch_size: int, seed: int, start: int, prefetch: int = 2,
                 device: torch.device | None = None, pairs: PairSampler | None = None):
        self.data, self.batch_size, self.seed, self.start, self.prefetch = data, batch_size, seed, start, prefetch
        self.device = device  # None: rendered by numpy on the host; else painted there
        self.pairs = pairs  # None: single images
        self.steps_per_paint = max(1, RENDER_IMAGES // (batch_size * (2 if pairs else 1)))

    def _rng(self, step: int, rank: int) -> np.random.Generator:  # each DDP rank its own batches
        return np.random.default_rng([self.seed, step, rank] if rank else [self.seed, step])

    def _batch(self, step: int, rank: int):
        if self.pairs is not None:
            x, changed = self.pairs.sample(self.batch_size, self._rng(step, rank))
            return torch.from_numpy(x), torch.from_numpy(changed)
        return torch.from_numpy(self.data.sample_observations(self.batch_size, self._rng(step, rank)))

    def _rows(self, first: int, rank: int) -> np.ndarray:
        """The draws (factors and random parameters) of the steps painted together from ``first`` on."""
        steps = range(first, first + self.steps_per_paint)
        if self.pairs is not None:
            return np.concatenate([self.pairs.draw(self.batch_size, self._rng(t, rank)) for t in steps])
        return np.concatenate([draw(self.data, self.batch_size, self._rng(t, rank)) for t in steps])

    def __iter__(self):
        dist = torch.distributed
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        if self.device is None:
            yield from self._ahead(self._batch, itertools.count(self.start), rank)
            return
        firsts = itertools.count(self.start, self.steps_per_paint)
        for rows in self._ahead(self._rows, firsts, rank):  # painted here, in the training stream's order
            rows = upload(rows, self.device)
            images = paint_rows(self.data, rows)
            yield from (self.pairs.split(images, rows, self.batch_size) if self.pairs is not None
                        else images.split(self.batch_size))

    def _ahead(self, job, items, rank: int):
        """``job(item, rank)`` for each item, run by a background thread up to ``prefetch`` items ahead."""
        if not self.prefetch:
            yield from (job(item, rank) for item in items)
            return
        pool = ThreadPoolExecutor(1, thread_name_prefix="dislab-batches")
        try:
            ahead = deque(pool.submit(job, next(items), rank) for _ in range(self.prefetch))
            while True:
                out = ahead.popleft().result()  # a rendering error is raised here, in the loop
                ahead.append(pool.submit(job, next(items), rank))
                yield out
        finally:
            pool.shutdown(cancel_futures=True)


class GroundTruthDataModule(pl.LightningDataModule):
    """``device``: where batches are rendered, as the ``dataset.device`` knob (None: ``data.device``).
    ``pairs``: None (single images), or the ``PairSampler`` options (``k``, ``k_rule``) of a
    weakly-supervised model (its ``pairs``)."""

    def __init__(self, data: GroundTruthData, batch_size: int = 64, seed: int = 0, device: str | None = None,
                 pairs: dict | None = None):
        super().__init__()
        if batch_size <= 0:
            raise ValueError(f"batch_size={batch_size} must be a positive integer")
        self.data, self.batch_size, self.seed = data, batch_size, seed
        self.pairs = None if pairs is None else PairSampler(data, **pairs)
        self.device = check_device(getattr(data, "device", "auto") if device is None else device)
        self.start_step = 0  # set by the trainer driver when resuming

    def render_device(self) -> torch.device | None:
        """The device batches are painted on; None: rendered by numpy on the host."""
        trainer = self.trainer
        return paint_device(self.data, trainer.strategy.root_device if trainer is not None else "cpu")

    def train_dataloader(self):
        ds = _Batches(self.data, self.batch_size, self.seed, self.start_step, device=self.render_device(),
                      pairs=self.pairs)
        # its own generator: creating the iterator would otherwise draw from the global torch RNG,
        # after a resume has restored it, and the resumed run would diverge
        return DataLoader(ds, batch_size=None, num_workers=0, generator=torch.Generator().manual_seed(self.seed))
