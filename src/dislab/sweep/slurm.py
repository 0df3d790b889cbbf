"""``launcher=slurm``: Hydra's submitit SLURM launcher, waiting on its jobs so that a sweep survives them.

hydra-submitit-launcher 1.2 submits the jobs as one job array, then waits on ``job.results()``: a
job that SLURM cancels, pre-empts or stops at its time limit leaves no result, so the wait raises
``UncompletedJobError`` (with accounting) or never returns (without: submitit asks only ``sacct``).
This subclass submits the same way and waits itself, asking ``squeue`` (which keeps ended jobs for
``MinJobAge``, 300 s by default) with ``sacct`` through submitit's ``job.state`` as a fallback:

- a job ends **done**, or as its run directory says (failed: ``error.txt``), or as SLURM ended it:
  cancelled, timed out, pre-empted (SLURM's state, else slurmstepd's ``*** ... DUE TO ... ***``
  line in the job's log). The launcher then writes the job's ``error.txt`` as ``<status>: <what
  happened>; <what the job said>`` (``dislab.sweep.runs.STATUSES``), and the sweep's callback writes
  ``sweep_summary.csv`` and ``udr.json`` and exits with status 1. Re-running the same command redoes
  the unfinished jobs; ``run()`` resumes each from its ``checkpoints/last.ckpt``.
- a job that cannot start as requested (``squeue`` reason ``PartitionConfig``, ``BadConstraints``,
  ...) is cancelled and reported in one line (status **cannot run**); other pending reasons
  (``Resources``, ``Priority``, ``ReqNodeNotAvail``...) are printed once each as they change.
- ``sbatch`` refusing the jobs gets one line and exit status 2.
- Ctrl-C cancels the submitted jobs (``scancel``), waits for them to save their checkpoints (a second
  Ctrl-C stops waiting) and writes the summary.

Resources left ``null`` follow the run: ``gpus_per_node`` from the trainer (``trainer=gpu``: its
``devices``; ``trainer=ddp``: ``trainer.devices``, one task per device, also on CPU),
``cpus_per_task`` from ``threads``, ``mem_gb`` 8 GB per task. The jobs themselves checkpoint on SIGTERM and USR2
(``dislab.callbacks.checkpoint``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as SubmititSlurmLauncher
from omegaconf import DictConfig, OmegaConf, open_dict

from dislab.rundir import CHECKPOINT, CONFIG, ERROR, HYDRA, METRICS

log = logging.getLogger("dislab.sweep")

# SLURM job states after which a job does not run again (squeue --states=all / sacct)
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
         "DEADLINE", "REVOKED", "SPECIAL_EXIT"}
# what each ending means in the sweep summary, and in words
ENDINGS = {"CANCELLED": ("cancelled", "was cancelled (scancel)"), "TIMEOUT": ("timed out", "reached its time limit"),
           "DEADLINE": ("timed out", "reached its deadline"), "PREEMPTED": ("pre-empted", "was pre-empted"),
           "OUT_OF_MEMORY": ("failed", "ran out of memory (raise hydra.launcher.mem_gb)"),
           "NODE_FAIL": ("failed", "lost its node"), "BOOT_FAIL": ("failed", "lost its node")}
# slurmstepd's last words in a job's log: "*** JOB 12 ON node CANCELLED AT <time> DUE TO TIME LIMIT ***"
STEPD = re.compile(r"\*\*\* (?:JOB|STEP) \S+ ON \S+ CANCELLED AT \S+(?: DUE TO ([A-Z ]+?))? \*\*\*")
STEPD_STATES = {None: "CANCELLED", "TIME LIMIT": "TIMEOUT", "PREEMPTION": "PREEMPTED", "NODE FAILURE": "NODE_FAIL"}
MEM_GB = 8  # host memory per task when mem_gb=null: a CPU run peaks near 0.6 GB, dataset=images caches 4 GB
# pending reasons under which a job never starts as requested: cancel it and say so
NEVER = {"PartitionConfig": "the request exceeds what the partition's nodes or limits allow",
         "BadConstraints": "no node satisfies the request's constraints",
         "PartitionTimeLimit": "timeout_min exceeds the partition's time limit",
         "InvalidAccount": "the account is not valid", "InvalidQOS": "the QOS is not valid"}


def squeue(ids) -> dict[str, tuple[str, str]]:
    """``{job id: (state, reason)}`` for the array/job ``ids`` (ended jobs too, for ``MinJobAge``)."""
    out = subprocess.run(["squeue", "-h", "-r", "--states=all", "-j", ",".join(ids), "-o", "%i|%T|%r"],
                         capture_output=True, text=True, timeout=60)
    if out.returncode and "Invalid job id" not in out.stderr:
        raise RuntimeError(out.stderr.strip() or f"squeue exited with status {out.returncode}")
    return {i: (s.split()[0] if s else "", r) for i, s, r in
            (line.split("|", 2) for line in out.stdout.splitlines() if line.count("|") == 2)}


def logged_ending(job) -> str | None:
    """The ending slurmstepd wrote in the job's log (the last one: a requeued job appends)."""
    try:
        text = Path(job.paths.stderr).read_text(errors="replace")
    except OSError:
        return None
    found = STEPD.findall(text)
    return STEPD_STATES.get(found[-1] or None) if found else None


def resources(params: dict, config: DictConfig) -> dict:
    """``params`` with ``gpus_per_node``/``tasks_per_node``/``cpus_per_task``/``mem_gb`` filled from
    the run where the user left them to it (``null``, or one task)."""
    params = dict(params)
    trainer = config.get("trainer") or {}
    accelerator = str(trainer.get("accelerator", "auto")).lower()
    strategy = trainer.get("strategy")
    named = str(strategy.get("_target_", "") if isinstance(strategy, DictConfig) else strategy or "")
    ddp = "ddp" in named.lower()
    devices = trainer.get("devices", "auto")
    count = len(devices) if OmegaConf.is_list(devices) else devices if isinstance(devices, int) and devices > 0 \
        else None
    gpu = accelerator in ("gpu", "cuda") or (ddp and accelerator == "auto")
    if ddp and count is None:
        _fail(f"trainer=ddp under launcher=slurm needs a number of devices per job: trainer.devices={devices} "
              f"(e.g. trainer.devices=4; SLURM starts one task per device)")
    if params.get("gpus_per_node") is None and gpu:
        params["gpus_per_node"] = count or 1
    if ddp and params.get("tasks_per_node", 1) == 1:
        params["tasks_per_node"] = count
    if params.get("cpus_per_task") is None:
        params["cpus_per_task"] = int(config.get("threads") or 1)
    if params.get("mem_gb") is None:  # submitit's mem_gb is per node: MEM_GB per task
        params["mem_gb"] = MEM_GB * params.get("tasks_per_node", 1)
    return params


def _fail(msg: str):
    print(f"error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def _request(params: dict) -> str:
    keys = ("partition", "cpus_per_task", "mem_gb", "gpus_per_node", "tasks_per_node", "timeout_min")
    return " ".join(f"{k}={params.get(k)}" for k in keys if params.get(k) is not None)


@dataclass
class Job:
    """One job of the sweep: its config and run directory, its submitit job (None: not submitted, as
    it had finished before) and, when SLURM ended it, SLURM's state."""

    num: int
    overrides: list[str]
    run_dir: Path
    config: DictConfig | None = None  # composed only where needed (a subdir other than the job number)
    sub: object = None
    ending: str | None = None

    @property
    def done(self) -> bool:
        return (self.run_dir / METRICS).exists()


class SlurmLauncher(SubmititSlurmLauncher):
    """hydra-submitit-launcher's ``SlurmLauncher`` that tolerates unfinished jobs (see the module)."""

    def __call__(self, *args, **kwargs):  # in the SLURM job, before Hydra runs it
        from dislab.callbacks.checkpoint import catch_signals

        catch_signals(sigterm=True)
        return super().__call__(*args, **kwargs)

    def launch(self, job_overrides, initial_job_idx):
        assert self.config is not None
        params = resources(self.params, self.config)
        self._asked = _request(params)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info("Submitit 'slurm' sweep output dir : %s (%s)", sweep_dir, _request(params))
        jobs = [self._job(list(o), num) for num, o in enumerate(job_overrides, start=initial_job_idx)]
        for j in jobs:
            log.info("\t#%d : %s%s", j.num, " ".join(filter_overrides(j.overrides)), " (done: skipped)" * j.done)
        todo = [j for j in jobs if not j.done]
        if todo:
            self._submit(todo, params)
            self._wait(todo)
        return [self._job_return(j) for j in jobs]

    def _job(self, overrides: list[str], num: int) -> Job:
        subdir = OmegaConf.to_container(self.config.hydra.sweep, resolve=False)["subdir"]
        if subdir == "${hydra.job.num}" and not any(o.startswith("hydra.sweep.subdir=") for o in overrides):
            # conf/train.yaml's, not a packed sweep's (dislab.sweep.pack): no need to compose the job's config
            return Job(num, overrides, Path(str(self.config.hydra.sweep.dir)) / str(num))
        config = self._config(overrides, num)
        return Job(num, overrides, Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir), config)

    def _config(self, overrides: list[str], num: int) -> DictConfig:
        config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(config.hydra.job):
            config.hydra.job.num = num
            config.hydra.job.id = f"job_id_for_{num}"
        return config

    def _submit(self, jobs: list[Job], params: dict) -> None:
        import submitit
        from submitit.core.utils import FailedJobError

        executor = submitit.AutoExecutor(cluster="slurm", folder=params["submitit_folder"],
                                         slurm_max_num_timeout=params["max_num_timeout"])
        base = set(OmegaConf.structured(BaseQueueConf))
        executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()
                                      if k not in ("submitit_folder", "max_num_timeout")})
        state = Singleton.get_state()
        args = [(j.overrides, "hydra.sweep.dir", j.num, f"job_id_for_{j.num}", state) for j in jobs]
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # submitit prints sbatch's stderr: we say it once
                subs = executor.map_array(self, *zip(*args, strict=True))
        except FailedJobError as e:
            said = "; ".join(line.split("error:", 1)[-1].strip() for line in str(e).splitlines() if line.strip())
            _fail(f"SLURM refused the jobs: {said} ({_request(params)})")
        for j, sub in zip(jobs, subs, strict=True):
            j.sub = sub
        log.info("submitted SLURM job %s (%d jobs); waiting for them (Ctrl-C cancels them)",
                 subs[0].job_id.split("_")[0], len(subs))

    # ---- waiting ----------------------------------------------------------------------------------
    def _wait(self, jobs: list[Job]) -> None:
        """Poll squeue until every job has ended; set ``ending`` on those SLURM ended (cancelled, timed
        out...) and on those cancelled here (``CANNOT_RUN <reason>``, ``CANCELLED_HERE``)."""
        ids = sorted({j.sub.job_id.split("_")[0] for j in jobs})
        running, missing, said, warned, interrupted, start = list(jobs), {}, "", False, False, time.time()
        while running:
            try:
                try:
                    known = squeue(ids)
                except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                    if not warned:
                        log.warning("squeue failed (retrying): %s", e)
                        warned = True
                    known = None
                waiting: dict[str, int] = {}
                for j in list(running) if known is not None else []:
                    state, reason = known.get(j.sub.job_id, ("", ""))
                    if not state:  # not listed: ended longer ago than MinJobAge, or not yet listed
                        missing[j.num] = missing.get(j.num, 0) + 1
                        state = self._forgotten_state(j.sub) if missing[j.num] >= 3 else ""
                    if state in ENDED or (j.done and j.sub.paths.result_pickle.exists()):
                        running.remove(j)
                        if state not in ("COMPLETED", "") and not j.done:
                            j.ending = "CANCELLED_HERE" if interrupted and state == "CANCELLED" else state
                    elif state == "PENDING" and reason in NEVER:
                        j.sub.cancel(check=False)
                        running.remove(j)
                        j.ending = f"CANNOT_RUN {reason}"
                        print(f"job {j.num} cannot run: SLURM says {reason}: {NEVER[reason]} ({self._asked}); "
                              f"cancelled it", file=sys.stderr, flush=True)
                    elif state == "PENDING" and reason not in ("None", "", "BeginTime"):
                        waiting[reason] = waiting.get(reason, 0) + 1
                now = ", ".join(f"{n} job{'s' * (n > 1)} waiting ({r})" for r, n in sorted(waiting.items()))
                if now and now != said:
                    log.info("SLURM: %s", now)
                said = now or said
                if running:
                    time.sleep(min(10.0, 1.0 + (time.time() - start) / 20))
            except KeyboardInterrupt:
                if interrupted:
                    raise
                interrupted = True
                subprocess.run(["scancel", *ids], capture_output=True, timeout=60)
                print(f"\nCtrl-C: cancelled SLURM job {', '.join(ids)}; waiting for its jobs to save their "
                      f"checkpoints (Ctrl-C again to stop waiting)", file=sys.stderr, flush=True)

    @staticmethod
    def _forgotten_state(sub) -> str:
        """A job squeue no longer lists: sacct's state (with accounting), else its log's last words."""
        try:
            state = str(sub.state).split()[0]
        except Exception:  # noqa: BLE001 (submitit relays whatever sacct does)
            state = "UNKNOWN"
        if state in ENDED:
            return state
        return logged_ending(sub) or ("COMPLETED" if sub.paths.result_pickle.exists() else "FAILED")

    # ---- after the wait ---------------------------------------------------------------------------
    def _job_return(self, j: Job) -> JobReturn:
        ret = JobReturn(overrides=j.overrides, status=JobStatus.COMPLETED, cfg=None)
        if j.sub is None:
            return ret  # finished before this sweep: not submitted
        first = j.sub.task(0) if j.sub.num_tasks > 1 else j.sub
        result = None
        if first.paths.result_pickle.exists():
            try:
                result = first.result()
            except Exception as e:  # noqa: BLE001 (the job's own exception, raised outside Hydra's run_job)
                result = e
        if j.done:
            return result if isinstance(result, JobReturn) and result.status == JobStatus.COMPLETED else ret
        if not (j.run_dir / HYDRA / CONFIG).exists():  # never started: list it in the summary
            config = j.config or self._config(j.overrides, j.num)
            _save_hydra_files(config, j.run_dir / str(config.hydra.output_subdir or ".hydra"))
        line = self._what_happened(j, result)
        from dislab.lock import held

        if held(j.run_dir):  # another process writes that directory now (a run of its own): not ours to write
            line = None
        if line:
            from dislab import atomic

            atomic.write_text(j.run_dir / ERROR, line + "\n")
        log.error("job %d did not finish: %s", j.num, line or _first_line(j.run_dir / ERROR))
        return ret

    def _what_happened(self, j: Job, result) -> str | None:
        """``<status>: <what>; <what the job said>``, or None where the job's own ``error.txt`` says it."""
        own = _first_line(j.run_dir / ERROR)
        sub, ending = j.sub, j.ending
        if ending is None or (ending == "FAILED" and own):
            if own:
                return None
            detail = str(result).strip().splitlines()[-1] if isinstance(result, Exception) else "no result"
            return f"failed: SLURM job {sub.job_id} ended without metrics.json ({detail}); see {sub.paths.stderr}"
        if ending.startswith("CANNOT_RUN"):
            reason = ending.split()[1]
            return f"cannot run: SLURM says {reason}: {NEVER[reason]} ({self._asked}); change hydra.launcher.*"
        if ending == "CANCELLED_HERE":
            status, what = "cancelled", "was cancelled by Ctrl-C on the sweep"
        else:
            status, what = ENDINGS.get(ending, ("failed", f"ended {ending}"))
        said = own.split(": ", 1)[1] if own.startswith("Interrupted: ") else own
        if not said:
            ckpt = j.run_dir / CHECKPOINT
            said = (f"checkpoint {ckpt} kept; re-run the same command to resume" if ckpt.exists()
                    else "no checkpoint; re-run the same command to start it again")
        return f"{status}: SLURM job {sub.job_id} {what}; {said}"


def _first_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[0] if lines else ""


def _save_hydra_files(config: DictConfig, where: Path) -> None:
    """``.hydra/`` as Hydra's ``run_job`` writes it, for a job that never started."""
    from dislab import atomic

    task = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
    atomic.write_text(where / "config.yaml", OmegaConf.to_yaml(task))
    atomic.write_text(where / "hydra.yaml", OmegaConf.to_yaml(OmegaConf.masked_copy(config, "hydra")))
    atomic.write_text(where / "overrides.yaml", OmegaConf.to_yaml(config.hydra.overrides.task))
