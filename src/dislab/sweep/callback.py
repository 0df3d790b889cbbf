"""The Hydra callback of every multirun (registered in ``conf/train.yaml`` under ``hydra.callbacks``).

What Hydra 1.3 does with a failing job: ``run_job`` catches the exception and returns a FAILED
``JobReturn``; the basic and joblib launchers run every job of the batch; then the basic sweeper
re-raises the first failure, so ``on_multirun_end`` never runs and no summary is written. This
callback, in ``on_job_end``, records the error (``error.txt``, the traceback in the job's log) and
marks the job as handled, so the sweep carries on; ``on_multirun_end`` then writes the summary and
ends the process with status 1 when a job did not finish.

Re-running the same command in the same sweep directory (``sweep_name=...`` or
``hydra.sweep.dir=...``) skips finished jobs: ``run()`` returns the saved metrics of a run
directory holding ``metrics.json``. Job directories are numbered (``hydra.job.num``), so the
callback refuses a sweep directory that an earlier, different command filled.

DDP under the basic launcher: Lightning starts each extra rank by re-running the command line.
During a job this callback makes that command line the job alone (its overrides, no ``-m``, its
output directory), so a rank is one run, not a second sweep with its own summary.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import time
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, read_write

from dislab.lock import is_other_rank
from dislab.rundir import CONFIG, ERROR, HYDRA, REFUSED, is_bookkeeping

log = logging.getLogger("dislab.sweep")
DDP_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
HYDRA_FLAGS = ("-cp", "-cn", "-cd", "--config-path", "--config-name", "--config-dir")


def _multirun(config) -> bool:
    return OmegaConf.select(config, "hydra.mode") == RunMode.MULTIRUN


def _comparable(config) -> dict:
    """What decides the jobs of a sweep: its task overrides in the order typed (they number the jobs), less
    bookkeeping (``dislab.rundir.is_bookkeeping``: where they run, what they log), and the sweeper's params."""
    task = [o for o in OmegaConf.to_container(config.hydra.overrides.task) if not is_bookkeeping(o)]
    params = OmegaConf.select(config, "hydra.sweeper.params")
    return {"overrides": task, "params": OmegaConf.to_container(params) if params is not None else None}


class SweepCallback(Callback):
    def __init__(self, summary: bool = True, wandb: bool = True, fail_status: int = 1, udr: dict | None = None):
        self.summary, self.wandb, self.fail_status = summary, wandb, fail_status
        self.udr_kwargs = dict(udr or {})
        self._main_pid = None
        self._started = None
        self._saved = None
        self._lock = None

    # ---- multirun -------------------------------------------------------------------------------
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        """Before the sweeper writes or submits anything: one driver per sweep directory (``.sweep.lock``
        names it; a second is refused with exit status 4), and a sweep directory an earlier, different
        command filled is refused (exit status 2). Exceptions would only be logged as warnings by Hydra."""
        from dislab.lock import SWEEP, RunDirInUse, RunLock

        self._main_pid, self._started = os.getpid(), time.time()
        _refuse_ddp_in_worker_processes(config)
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            sweep_dir.mkdir(parents=True, exist_ok=True)
            self._lock = RunLock(sweep_dir, name=SWEEP).acquire()
        except RunDirInUse as e:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(4) from None
        except OSError as e:
            print(f"error: cannot write the sweep directory {sweep_dir}: {e.strerror}", file=sys.stderr)
            raise SystemExit(1) from None
        atexit.register(self._release)
        previous = sweep_dir / "multirun.yaml"
        before = _comparable(OmegaConf.load(previous)) if previous.exists() else None
        now = _comparable(config)
        if before not in (None, now):
            self._release()
            print(f"error: {sweep_dir} holds a sweep started with other settings:\n"
                  f"  before: {' '.join(before['overrides'])}\n  now:    {' '.join(now['overrides'])}\n"
                  f"its numbered job directories would not match these jobs; use another sweep_name "
                  f"(or hydra.sweep.dir), or delete {sweep_dir}", file=sys.stderr)
            raise SystemExit(2)
        shutil.rmtree(sweep_dir / REFUSED, ignore_errors=True)  # an earlier driver's: this one decides anew
        if before is not None:
            log.info("re-running the sweep in %s: finished jobs are skipped", sweep_dir)

    def __getstate__(self):  # joblib and submitit send the callback to the jobs: the driver's lock stays here
        return {**self.__dict__, "_lock": None}

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        try:
            self._end(config)
        finally:
            self._release()

    def _end(self, config: DictConfig) -> None:
        if not self.summary or is_other_rank():
            return
        from dislab.sweep.summary import log_to_wandb, summarize, udr_to_runs

        sweep_dir = Path(config.hydra.sweep.dir)
        result = summarize(sweep_dir, self._started, self.udr_kwargs)
        print(result["text"], flush=True)
        _study_report(config, sweep_dir)
        wandb_node = next((n for n in (OmegaConf.select(config, "logger") or {}).values()
                           if "Wandb" in str(n.get("_target_", ""))), None)
        if self.wandb and wandb_node is not None:
            try:
                udr_to_runs(result)  # each job's UDR into its own W&B run
            except Exception as e:
                log.warning("writing UDR into the jobs' W&B runs failed: %s: %s", type(e).__name__, e)
            try:
                where = log_to_wandb(result, sweep_dir, project=wandb_node.get("project") or "dislab",
                                     entity=wandb_node.get("entity"), group=config.get("group"))
                print(f"W&B summary run: {where}", flush=True)
            except Exception as e:  # the summary files are written; W&B is a copy
                log.warning("the W&B summary run failed: %s: %s", type(e).__name__, e)
        if result["failed"] and self.fail_status:
            raise SystemExit(self.fail_status)

    # ---- each job -------------------------------------------------------------------------------
    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        if not _multirun(config) or os.getpid() != self._main_pid:
            return
        # the basic launcher runs the job in this process: if Lightning starts DDP ranks, they re-run
        # sys.argv; make it this one job, in this job's directory
        self._saved = (list(sys.argv), {k: os.environ.get(k) for k in DDP_ENV})
        sys.argv = [sys.argv[0], *_hydra_flags(sys.argv[1:]), *_job_overrides(config), "hydra.mode=RUN"]
        hc = HydraConfig.get()
        with read_write(hc.run):
            hc.run.dir = str(config.hydra.runtime.output_dir)

    def on_job_end(self, config: DictConfig, job_return, **kwargs) -> None:
        if not _multirun(config):
            return
        if self._saved is not None and os.getpid() == self._main_pid:
            sys.argv = self._saved[0]
            for k, v in self._saved[1].items():  # Lightning sets these in the launching process
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            self._saved = None
            _release_ddp_ranks()
        if job_return.status != JobStatus.FAILED:
            return
        err = job_return._return_value
        out = Path(config.hydra.runtime.output_dir)
        line = f"{type(err).__name__}: {err}".replace("\n", " ")
        from dislab import atomic
        from dislab.lock import RunDirInUse
        from dislab.rundir import RunDirRefused, record_refusal

        if isinstance(err, (RunDirInUse, RunDirRefused)):  # another process's directory, or another run's:
            if not is_other_rank():  # not this job's to write: the summary reads the job and why from the sweep dir
                record_refusal(config.hydra, out, err, job_return.cfg)
        elif not is_other_rank():
            if not (out / HYDRA / CONFIG).exists():  # failed before it started: list it in the summary
                from dislab.rundir import write_hydra

                write_hydra(out, job_return.cfg, job_return.hydra_cfg.hydra)
            if not (out / ERROR).exists():
                atomic.write_text(out / ERROR, line + "\n")
        log.error("job %s failed (the sweep goes on): %s", config.hydra.job.num, line,
                  exc_info=(type(err), err, err.__traceback__) if isinstance(err, BaseException) else None)
        job_return.status = JobStatus.COMPLETED  # handled: the sweeper must not re-raise it
        job_return.return_value = None


def _study_report(config, sweep_dir: Path) -> None:
    """``sweep=unsupervised_study``'s ``study.report``: the sweep's report (``python -m dislab.report``, a layer
    above this one, so in its own process) in ``<sweep dir>/report``, against ``study.baseline``, with
    ``study.reference``; its tables are then the W&B summary run's too (``dislab.sweep.summary.report_tables``)."""
    study = OmegaConf.select(config, "study")
    if not study or not study.get("report"):
        return
    import subprocess

    cmd = [sys.executable, "-m", "dislab.report", str(sweep_dir)]
    cmd += ["--baseline", str(study.baseline)] if study.get("baseline") else []
    cmd += ["--reference", str(study.reference)] if study.get("reference") else []
    done = subprocess.run(cmd, capture_output=True, text=True)
    print((done.stdout + done.stderr).strip(), flush=True)
    if done.returncode:
        log.warning("the study's report failed (exit status %d): %s", done.returncode, " ".join(cmd))


def _refuse_ddp_in_worker_processes(config) -> None:
    """Lightning starts DDP ranks by re-running ``python -m <__main__'s module>``; in a joblib or
    submitit-local worker that module is the worker's own, so the ranks die and Lightning's watchdog
    kills the worker, which aborts the whole sweep. Say so before any job starts."""
    launcher = str(OmegaConf.select(config, "hydra.launcher._target_") or "")
    if not ("joblib" in launcher or launcher.endswith("LocalLauncher")):
        return
    strategy = OmegaConf.select(config, "trainer.strategy")
    named = str(strategy.get("_target_", "") if isinstance(strategy, DictConfig) else strategy or "")
    overrides = [o for o in OmegaConf.to_container(config.hydra.overrides.task)
                 if o.startswith(("trainer=", "trainer.strategy="))]
    if "ddp" in named.lower() or any("ddp" in o.lower() for o in overrides):
        print("error: trainer=ddp cannot run under launcher=joblib or launcher=gpus (Lightning starts the "
              "extra ranks by re-running the command, which a worker process does not have); use "
              "launcher=local (jobs one after another, each on all devices) or launcher=slurm", file=sys.stderr)
        raise SystemExit(2)


def _release_ddp_ranks(timeout: float = 60.0) -> None:
    """After a job run in this process: end the DDP ranks Lightning started for it and the process
    group it left up (the next DDP job would reuse it, with these ranks gone). Lightning also leaves
    a watchdog thread that SIGKILLs the launching process when a rank exits with an error — here
    that process is the whole sweep — so the watchdog is given an empty list of ranks to watch
    (``_ChildProcessObserver._child_processes``, private to Lightning: checked defensively)."""
    import subprocess
    import threading

    for t in threading.enumerate():
        procs = getattr(t, "_child_processes", None)
        if t.name != "child-process-observer" or not isinstance(procs, list):
            continue
        ranks = list(procs)
        procs.clear()  # the watchdog now sees no rank and ends quietly
        for p in ranks:
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _hydra_flags(args: list[str]) -> list[str]:
    """Command-line flags to keep (config path/name/dir), without ``-m`` and the overrides."""
    out, keep_next = [], False
    for a in args:
        if keep_next:
            out.append(a)
            keep_next = False
        elif a in HYDRA_FLAGS:
            out.append(a)
            keep_next = True
        elif a.startswith(tuple(f"{f}=" for f in HYDRA_FLAGS if f.startswith("--"))):
            out.append(a)
    return out


def _job_overrides(config) -> list[str]:
    task = list(OmegaConf.to_container(config.hydra.overrides.task))
    hydra = [o for o in OmegaConf.to_container(config.hydra.overrides.hydra)
             if not o.lstrip("+~").startswith(("hydra.mode", "hydra.sweep", "hydra.launcher", "hydra/launcher",
                                                "hydra.sweeper", "hydra/sweeper", "hydra.run", "hydra.callbacks"))]
    return [*task, *hydra]
