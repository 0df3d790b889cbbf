"""One LightningDataModule for any ``GroundTruthData``.

Batches are rendered whole (no per-item DataLoader, no worker processes on a 2-core machine), by
one background thread that keeps up to ``prefetch`` batches ready, so rendering overlaps the
training step (numpy releases the GIL in its array work; torch runs its kernels without it).
Batch t of a run draws from ``np.random.default_rng([seed, t])`` (DDP rank r > 0:
``[seed, t, r]``), so a resumed run sees exactly the batches an uninterrupted one would. Under DDP
``batch_size`` is per device.
"""

from __future__ import annotations

import itertools
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, IterableDataset

from dislab.data.ground_truth import GroundTruthData


class _Batches(IterableDataset):
    def __init__(self, data: GroundTruthData, batch_size: int, seed: int, start: int, prefetch: int = 2):
        self.data, self.batch_size, self.seed, self.start, self.prefetch = data, batch_size, seed, start, prefetch

    def _batch(self, step: int, rank: int) -> torch.Tensor:  # each DDP rank its own batches
        rng = np.random.default_rng([self.seed, step, rank] if rank else [self.seed, step])
        return torch.from_numpy(self.data.sample_observations(self.batch_size, rng))

    def __iter__(self):
        dist = torch.distributed
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        steps = itertools.count(self.start)
        if not self.prefetch:
            yield from (self._batch(step, rank) for step in steps)
            return
        pool = ThreadPoolExecutor(1, thread_name_prefix="dislab-batches")
        try:
            ahead = deque(pool.submit(self._batch, next(steps), rank) for _ in range(self.prefetch))
            while True:
                batch = ahead.popleft().result()  # a rendering error is raised here, in the loop
                ahead.append(pool.submit(self._batch, next(steps), rank))
                yield batch
        finally:
            pool.shutdown(cancel_futures=True)


class GroundTruthDataModule(pl.LightningDataModule):
    def __init__(self, data: GroundTruthData, batch_size: int = 64, seed: int = 0):
        super().__init__()
        if batch_size <= 0:
            raise ValueError(f"batch_size={batch_size} must be a positive integer")
        self.data, self.batch_size, self.seed = data, batch_size, seed
        self.start_step = 0  # set by the trainer driver when resuming

    def train_dataloader(self):
        ds = _Batches(self.data, self.batch_size, self.seed, self.start_step)
        # its own generator: creating the iterator would otherwise draw from the global torch RNG,
        # after a resume has restored it, and the resumed run would diverge
        return DataLoader(ds, batch_size=None, num_workers=0, generator=torch.Generator().manual_seed(self.seed))
