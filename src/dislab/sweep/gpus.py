"""Pack a sweep's jobs onto this machine's GPUs (``launcher=gpus``: joblib plus this callback).

joblib's worker processes are reused from job to job, and CUDA reads ``CUDA_VISIBLE_DEVICES`` once,
when a process first touches the GPU. So a GPU belongs to a *worker*, not to a job number: on its
first job each worker claims a free slot (an exclusive ``flock`` on ``<sweep>/.gpus/<slot>.lock``,
released when the process ends) and keeps the GPU of that slot, ``gpus[slot % len(gpus)]``, for
life. With ``n_jobs = len(gpus) * jobs_per_gpu`` workers, each GPU runs exactly ``jobs_per_gpu``
jobs at any time, however long each job takes. joblib does the scheduling; this only pins.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

log = logging.getLogger("dislab.sweep")
_claimed: dict = {}  # per worker process: {"slot": int, "gpu": str, "file": open lock file}


def visible_gpus(gpus=None) -> list[str]:
    """Physical ids of the GPUs to use: ``gpus`` indexes this process's visible devices (all when
    null). Reads ``CUDA_VISIBLE_DEVICES`` when set; otherwise asks torch."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if gpus is not None:
        picked = [int(g) for g in gpus]
        if env is None:
            return [str(i) for i in picked]
        visible = [g.strip() for g in env.split(",") if g.strip()]
        if any(i >= len(visible) for i in picked):
            raise ValueError(f"gpus={picked}, but CUDA_VISIBLE_DEVICES={env} shows {len(visible)}")
        return [visible[i] for i in picked]
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def gpu_of_slot(slot: int, gpus: list[str]) -> str:
    return gpus[slot % len(gpus)]


def claim_slot(lock_dir: Path, slots: int, poll_s: float = 1.0) -> tuple[int, object]:
    """The lowest free slot, held (``flock``) until this process exits; waits while all are taken."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    while True:
        for slot in range(slots):
            f = open(lock_dir / f"{slot}.lock", "w")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.close()
                continue
            f.write(f"{os.getpid()}\n")
            f.flush()
            return slot, f
        time.sleep(poll_s)


class PinGPUs(Callback):
    def __init__(self, gpus=None, jobs_per_gpu: int = 1):
        if int(jobs_per_gpu) < 1:
            raise ValueError(f"jobs_per_gpu={jobs_per_gpu} must be >= 1")
        self.gpus_arg, self.jobs_per_gpu = (list(gpus) if gpus is not None else None), int(jobs_per_gpu)
        self.gpus: list[str] = []
        self.slots = 0
        self._main_pid = None

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        """In the launching process, before the launcher exists: find the GPUs, size the pool."""
        self._main_pid = os.getpid()
        self.gpus = visible_gpus(self.gpus_arg)
        if not self.gpus:
            log.warning("launcher=gpus: no GPU is visible; jobs run on CPU, hydra.launcher.n_jobs as set")
            return
        n_jobs = int(config.hydra.launcher.get("n_jobs") or -1)
        self.slots = n_jobs if n_jobs > 0 else len(self.gpus) * self.jobs_per_gpu
        with read_write(config.hydra), open_dict(config.hydra.launcher):
            config.hydra.launcher.n_jobs = self.slots
        log.info("launcher=gpus: %d jobs at a time on GPUs %s", self.slots, ",".join(self.gpus))

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        if not self.gpus or os.getpid() == self._main_pid:
            return
        if "slot" not in _claimed:
            slot, f = claim_slot(Path(config.hydra.sweep.dir) / ".gpus", self.slots)
            _claimed.update(slot=slot, gpu=gpu_of_slot(slot, self.gpus), file=f)
            os.environ["CUDA_VISIBLE_DEVICES"] = _claimed["gpu"]
        log.info("job %s on GPU %s (worker slot %d, pid %d)", config.hydra.job.num, _claimed["gpu"],
                 _claimed["slot"], os.getpid())
