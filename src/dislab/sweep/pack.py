"""``pack=k``: a multirun's jobs trained k at a time as one program (``dislab.pack``), through any launcher.

The sweeper (``hydra_plugins.dislab_pack.PackSweeper``, Hydra's basic sweeper plus this) composes every job's
config, as the launcher would, and groups the jobs that can train together: the same network, data set, batch
size, steps, trainer, metrics and evaluation settings (``dislab.pack.run.group_key``), starting from the same
step, at most k per group, in job order. Each group is written to ``<sweep>/.packs/<g>/`` (one config per job,
``<job number>.yaml``) and launched as one job whose directory is that folder; the launcher runs it as it runs
any job (in this process, in a joblib worker, as one task of a SLURM job array). A job that cannot be packed
(its method or optimizer, a run trained alone before, a finished run) is launched as its own job, as without
``pack``, in its own numbered directory; the reason is logged once per job.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

from omegaconf import DictConfig, open_dict

from dislab import atomic
from dislab.pack.run import group_key, packable
from dislab.rundir import CHECKPOINT, METRICS

log = logging.getLogger("dislab.sweep")
PACKS = ".packs"


def _start(run_dir: Path) -> tuple[int, bool] | None:
    """The step a job's directory resumes from and whether it was trained packed; None: finished."""
    if (run_dir / METRICS).exists():
        return None
    ckpt = run_dir / CHECKPOINT
    if not ckpt.exists():
        return 0, True
    import torch

    state = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)  # two keys of it: no weights read
    return int(state.get("global_step", 0)), "packed" in state


def plan(jobs: list[tuple[int, list[str], DictConfig]], k: int, sweep_dir: Path) -> list[list[str]]:
    """The launcher's job list for ``jobs`` ``[(number, overrides, composed config)]``: groups of at most ``k``
    written under ``<sweep>/.packs/``, and the jobs that run alone."""
    groups: dict[str, list[tuple[int, list[str], DictConfig]]] = {}
    launch: list[list[str]] = []
    alone: list[tuple[int, list[str]]] = []
    for num, overrides, config in jobs:
        task = _task(config)
        run_dir = Path(str(config.hydra.sweep.dir)) / str(num)
        why = packable(task)
        start = _start(run_dir)
        if why is None and start is not None and not start[1]:
            why = "its checkpoint was written by a run trained alone"
        if why is None and start is None:
            why = "it is finished"
        if why:
            log.info("job %d runs alone: %s", num, why)
            alone.append((num, overrides))
            continue
        groups.setdefault(f"{group_key(task)}|{start[0]}", []).append((num, overrides, config))
    n = 0
    for members in groups.values():
        for i in range(0, len(members), k):
            chunk = members[i:i + k]
            folder = sweep_dir / PACKS / str(n)
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.glob("*.pkl"):
                old.unlink()
            for num, _, config in chunk:
                atomic.write_bytes(folder / f"{num}.pkl", pickle.dumps(config))
            log.info("packed group %d: jobs %s", n, ",".join(str(num) for num, _, _ in chunk))
            # composed as its first job (launcher, resources), in its group's folder
            launch.append([*chunk[0][1], f"hydra.sweep.subdir={PACKS}/{n}"])
            n += 1
    launch += [[*overrides, f"hydra.sweep.subdir={num}"] for num, overrides in alone]
    return launch


def member_config(loader, master: DictConfig, overrides: list[str], num: int) -> DictConfig:
    """Job ``num``'s config as its launcher composes it, with what a later process cannot resolve again fixed:
    the sweep's name and directory, the job's number and output directory."""
    config = loader.load_sweep_config(master, list(overrides))
    with open_dict(config):
        config.sweep_name = str(master.sweep_name)
        config.hydra.sweep.dir = str(master.hydra.sweep.dir)
        config.hydra.job.num = num
        config.hydra.job.id = f"job_id_for_{num}"
        config.hydra.runtime.output_dir = str(Path(str(master.hydra.sweep.dir)) / str(num))
    return config


def _task(config: DictConfig) -> DictConfig:
    task = config.copy()
    with open_dict(task):
        del task["hydra"]
    return task


def group_dir(output_dir) -> Path | None:
    """The group folder a pack job runs in (its output directory), or None for any other job."""
    p = Path(str(output_dir))
    return p if p.parent.name == PACKS and any(p.glob("*.pkl")) else None


def run_group_dir(folder: Path) -> None:
    """The pack job: train the group written in ``folder``."""
    from dislab.pack.run import run_group

    configs = sorted(folder.glob("*.pkl"), key=lambda p: int(p.stem))
    jobs = []
    for path in configs:
        with open(path, "rb") as f:
            full = pickle.load(f)
        jobs.append((_task(full), full))
    results = run_group(jobs, group_id=folder.name)
    failed = [str(c.stem) for c, r in zip(configs, results, strict=True) if isinstance(r, BaseException)]
    if failed:
        log.error("packed group %s: jobs %s did not finish (see their error.txt)", folder.name, ",".join(failed))
