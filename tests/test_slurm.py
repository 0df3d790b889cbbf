"""Sweeps through ``launcher=slurm`` against a real single-node SLURM (``slurm_cluster``): a clean
sweep, a failing job, ``scancel``, ``scancel --signal=TERM``, a USR2 (submitit's requeue), a time
limit, pre-emption, Ctrl-C, requests the cluster cannot satisfy, DDP ranks started by SLURM, and a
re-run that redoes only what is missing. Skipped (with the reason) where SLURM cannot be started;
under CI=true as root they must run. Jobs are tiny; ``held_toy`` holds a job in training while a
test acts on it."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from pytorch_lightning import Callback

import slurm_cluster
from conftest import ROOT, TINY

SLURM = ["-m", "launcher=slurm", "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=10"]
WAIT = 600  # seconds any one thing may take on a loaded machine before a test gives up


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    try:
        cluster = slurm_cluster.start(tmp_path_factory.mktemp("slurm"))
    except slurm_cluster.Unavailable as e:
        if os.environ.get("CI") == "true" and os.geteuid() == 0:
            pytest.fail(f"CI must run the SLURM tests, but SLURM could not start: {e}")
        pytest.skip(f"SLURM cannot start here: {e}")
    yield cluster
    cluster.stop()


class Sweep:
    """``python train.py <args>`` in the background, with the cluster's environment."""

    def __init__(self, cluster, out_dir: Path, *args):
        self.cluster, self.dir = cluster, out_dir
        path = os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])
        env = {**cluster.env, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0", "PYTHONPATH": path}
        self.log = out_dir.parent / f"{out_dir.name}.{time.time_ns()}.log"
        with open(self.log, "w") as f:
            self.proc = subprocess.Popen([sys.executable, "train.py", *args, f"hydra.sweep.dir={out_dir}"], cwd=ROOT,
                                         env=env, stdout=f, stderr=subprocess.STDOUT, text=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout=WAIT) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"the sweep did not end in {timeout} s:\n{self.output()[-4000:]}\n{self.cluster.logs()}")

    def until(self, what: str, cond, timeout=WAIT):
        end = time.time() + timeout
        while not (found := cond()):
            if self.proc.poll() is not None:
                pytest.fail(f"the sweep ended before {what}:\n{self.output()[-4000:]}")
            if time.time() > end:
                pytest.fail(f"no {what} after {timeout} s:\n{self.output()[-4000:]}\n{self.cluster.jobs()}")
            time.sleep(0.3)
        return found

    def array(self) -> str:
        """The SLURM job id of the sweep's (last) submission."""
        def subs():
            found = [p for p in (self.dir / ".submitit").glob("*_*") if p.name.split("_")[0].isdigit() and p.is_dir()]
            return sorted(found, key=lambda p: p.stat().st_mtime)

        return self.until("submission", subs)[-1].name.split("_")[0]

    def checkpoint(self, job: int):
        ckpt = self.dir / str(job) / "checkpoints" / "last.ckpt"
        return self.until(f"checkpoint of job {job}", ckpt.exists)


@pytest.fixture(scope="module")
def side_by_side(slurm, tmp_path_factory):
    """Sweeps that need no test acting on them, started together (as on a shared cluster) when the
    first test asks, each checked by its own test: a clean 2x2 sweep, DDP on the GPU partition, and
    two requests the cluster cannot satisfy."""
    d = tmp_path_factory.mktemp("side_by_side")
    sweeps = {
        "clean": Sweep(slurm, d / "clean", *SLURM, "model=beta_vae,vae", "seed=0,1", "steps=3", *TINY),
        "ddp": Sweep(slurm, d / "ddp", *SLURM, "hydra.launcher.partition=gpu", "seed=0", "steps=4",
                     *[o for o in TINY if o != "eval_untrained=false"], "trainer=ddp", "trainer.devices=2"),
        "refused": Sweep(slurm, d / "refused", *SLURM, "hydra.launcher.partition=nope", "seed=0,1", *TINY),
        "big": Sweep(slurm, d / "big", *SLURM, "hydra.launcher.cpus_per_task=64", "seed=0,1", *TINY),
        "packed": Sweep(slurm, d / "packed", *SLURM, "model=beta_vae,factor_vae", "seed=0,1", "steps=3", "pack=2",
                        *TINY),
    }
    yield sweeps
    for sweep in sweeps.values():  # a test that failed early may leave one running
        if sweep.proc.poll() is None:
            sweep.proc.kill()
            sweep.proc.wait()


def summary(sweep_dir) -> dict[str, dict]:
    with open(sweep_dir / "sweep_summary.csv", newline="") as f:
        return {row["job"]: row for row in csv.DictReader(f)}


def unfinished(sweep_dir) -> dict[str, str]:
    """udr.json's unfinished runs: ``{job: status}``."""
    cells = json.loads((sweep_dir / "udr.json").read_text())["cells"]
    return {u["run"]: u["status"] for c in cells for u in c["unfinished"]}


def test_failing_cancelled_interrupted_and_timed_out_jobs_then_a_rerun_redoes_only_those(slurm, side_by_side,
                                                                                       tmp_path):
    """Five jobs at once: 0 trains; 1 fails (a corrupt checkpoint); 2 is scancel'ed; 3 gets SIGTERM
    (scancel --signal=TERM: it saves and stops); 4 gets USR2 (it saves and trains on), then reaches a
    one-minute time limit (SIGTERM: it saves and stops). Then the same command trains 1-4 only,
    resuming 2-4 from their checkpoints."""
    d, hold = tmp_path / "s", tmp_path / "hold"
    hold.mkdir()
    for job in (2, 3, 4):
        (hold / str(job)).touch()
    bad = d / "1" / "checkpoints" / "last.ckpt"
    bad.parent.mkdir(parents=True)
    bad.write_text("not a checkpoint")
    args = [*SLURM, "model=vae", "seed=0,1,2,3,4", "steps=200", "checkpoint_every=5", *TINY,
            "dataset._target_=held_toy.HeldToy", f"+dataset.hold={hold}"]
    sweep = Sweep(slurm, d, *args)
    arr = sweep.array()
    sweep.checkpoint(4)
    log4 = d / "4" / "train.log"
    slurm.run("scancel", "--signal=USR2", f"{arr}_4")  # as SLURM's warning would, but before the limit for sure
    sweep.until("job 4's USR2 checkpoint", lambda: "USR2 at step" in log4.read_text())
    slurm.run("scontrol", "update", f"JobId={arr}_4", "TimeLimit=1")
    for job in (2, 3):
        sweep.checkpoint(job)
    slurm.run("scancel", f"{arr}_2")
    slurm.run("scancel", "--signal=TERM", f"{arr}_3")
    assert sweep.wait() == 1, sweep.output()[-4000:]

    rows = summary(d)
    assert {j: r["status"] for j, r in rows.items()} == {
        "0": "done", "1": "failed", "2": "cancelled", "3": "interrupted", "4": "timed out"}, rows
    assert "cannot resume" in rows["1"]["error"]
    assert rows["2"]["error"].startswith(f"cancelled: SLURM job {arr}_2 was cancelled (scancel); SIGTERM at step ")
    assert rows["3"]["error"].startswith("Interrupted: SIGTERM at step ")
    assert rows["4"]["error"].startswith(f"timed out: SLURM job {arr}_4 reached its time limit; SIGTERM at step ")
    for j in "234":
        assert "checkpoint saved to" in rows[j]["error"] and "re-run the same command to resume" in rows[j]["error"]
    assert unfinished(d) == {"1": "failed", "2": "cancelled", "3": "interrupted", "4": "timed out"}
    text = log4.read_text()
    assert "timed-out too many times; training goes on" in text, text[-3000:]  # submitit's rule: timeout_min=10
    out = sweep.output()
    assert "5 jobs, 1 done, 1 failed, 1 cancelled, 1 timed out, 1 interrupted" in out, out[-3000:]
    steps = {j: _step(d / j) for j in "234"}
    assert all(0 < s < 200 for s in steps.values()), steps

    done = (d / "0" / "metrics.json").stat().st_mtime_ns
    bad.unlink()
    for job in (2, 3, 4):
        (hold / str(job)).unlink()
    again = Sweep(slurm, d, *args)  # the same command
    assert again.wait() == 0, again.output()[-4000:]
    assert (d / "0" / "metrics.json").stat().st_mtime_ns == done
    assert "(done: skipped)" in again.output()
    assert len(list((d / ".submitit").glob(f"{again.array()}_*"))) == 4  # jobs 1-4 only
    for j in "234":
        assert f"resuming {d / j} from step {steps[j]}" in (d / j / "train.log").read_text()
    assert [r["status"] for r in summary(d).values()] == ["done"] * 5
    assert "5 jobs, 5 done (1 from an earlier run, skipped)" in again.output()


def test_a_second_driver_on_a_sweep_directory_in_use_is_refused_before_it_submits(slurm, tmp_path):
    """The same command twice at once: the second driver is refused in one line naming the first (exit 4) and
    submits nothing, writes nothing into the sweep or its job's directory; the first ends as if alone."""
    d, hold = tmp_path / "s", tmp_path / "hold"
    hold.mkdir()
    for job in (0, 1):
        (hold / str(job)).touch()
    args = [*SLURM, "model=vae", "seed=0,1", "steps=30", "checkpoint_every=5", *TINY,
            "dataset._target_=held_toy.HeldToy", f"+dataset.hold={hold}"]
    first = Sweep(slurm, d, *args)
    arr = first.array()
    first.checkpoint(0)  # its job trains, held
    job = {p.name: p.stat().st_mtime_ns for p in (d / "0").rglob("*") if p.is_file() and p.name != ".lock"}
    sweep_files = {p.name: p.stat().st_mtime_ns for p in d.iterdir() if p.is_file() and p.name != ".sweep.lock"}
    second = Sweep(slurm, d, *args)
    assert second.wait() == 4, second.output()[-4000:]
    said = [line for line in second.output().splitlines() if line.startswith("error:")]
    assert len(said) == 1 and f"sweep directory {d} is in use by PID {first.proc.pid}" in said[0], said
    assert {p.name: p.stat().st_mtime_ns for p in d.iterdir() if p.is_file() and p.name != ".sweep.lock"} \
        == sweep_files
    assert sorted(p.name for p in (d / ".submitit").glob("*_*") if p.is_dir()) == [f"{arr}_0", f"{arr}_1"]
    assert not (d / "0" / "error.txt").exists() and not (d / "refused").exists()
    now = {p.name: p.stat().st_mtime_ns for p in (d / "0").rglob("*") if p.is_file() and p.name != ".lock"}
    assert all(now.get(name) is not None for name in job)  # (the first's job goes on writing its own files)
    for job in (0, 1):
        (hold / str(job)).unlink()
    assert first.wait() == 0, first.output()[-4000:]
    assert [r["status"] for r in summary(d).values()] == ["done", "done"] and not (d / ".sweep.lock").exists()


def test_a_clean_two_by_two_sweep(side_by_side):
    sweep = side_by_side["clean"]
    assert sweep.wait() == 0, sweep.output()[-4000:]
    rows = summary(sweep.dir)
    assert [rows[j]["status"] for j in "0123"] == ["done"] * 4
    assert all(0 <= float(rows[j]["udr_lasso"]) <= 1 for j in "0123")
    assert "4 jobs, 4 done" in sweep.output()
    script = next((sweep.dir / ".submitit").glob("*/*_submission.sh")).read_text()
    assert "#SBATCH --cpus-per-task=1" in script and "#SBATCH --mem=1GB" in script and "gpus" not in script


def test_a_packed_sweep_submits_its_groups_as_the_tasks_of_one_array(side_by_side):
    """pack=2: four jobs in two groups, two tasks of one SLURM array; each job a normal run that says it was packed."""
    sweep = side_by_side["packed"]
    assert sweep.wait() == 0, sweep.output()[-4000:]
    rows = summary(sweep.dir)
    assert [rows[j]["status"] for j in "0123"] == ["done"] * 4
    groups = [json.loads((sweep.dir / j / "metrics.json").read_text())["packed"]["group"] for j in "0123"]
    assert [[Path(p).name for p in g] for g in groups] == [["0", "1"], ["0", "1"], ["2", "3"], ["2", "3"]]
    tasks = sorted(p.name for p in (sweep.dir / ".submitit").glob("*_*") if p.is_dir() and p.name[0].isdigit())
    assert len(tasks) == 2 and len({t.split("_")[0] for t in tasks}) == 1, tasks


def _step(run_dir) -> int:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]


def _state(cluster, job: str) -> str:
    return cluster.jobs().get(job, ("",))[0]


def test_requests_the_cluster_cannot_satisfy_get_one_line(slurm, side_by_side):
    refused = side_by_side["refused"]
    assert refused.wait() == 2
    err = [line for line in refused.output().splitlines() if line.startswith(("error", "Traceback"))]
    assert len(err) == 1 and err[0].startswith("error: SLURM refused the jobs: "), refused.output()
    assert "Invalid partition name specified (partition=nope cpus_per_task=1 mem_gb=1" in err[0]

    big = side_by_side["big"]
    assert big.wait() == 1, big.output()[-4000:]
    assert "job 0 cannot run: SLURM says PartitionConfig" in big.output()
    rows = summary(big.dir)
    assert [r["status"] for r in rows.values()] == ["cannot run"] * 2
    assert "cpus_per_task=64" in rows["0"]["error"]
    arr = big.array()
    assert not [j for j, (state, _) in slurm.jobs().items() if j.split("_")[0] == arr and state == "PENDING"]


def test_ddp_on_a_gpu_partition_one_task_per_device_and_rank_zero_alone_scores_the_untrained_network(side_by_side):
    """trainer=ddp asks for trainer.devices GPUs and tasks; SLURM gives the job its two stand-in GPUs
    and starts both ranks; finding no CUDA, Lightning's accelerator=auto trains on CPU (gloo)."""
    sweep = side_by_side["ddp"]
    d = sweep.dir
    assert sweep.wait() == 0, sweep.output()[-4000:]
    script = next((d / ".submitit").glob("*/*_submission.sh")).read_text()
    assert "#SBATCH --gpus-per-node=2" in script and "#SBATCH --ntasks-per-node=2" in script
    saved = json.loads((d / "0" / "metrics.json").read_text())
    assert saved["global_step"] == 4 and saved["untrained"]
    logs = {p.name: p.read_text() for p in (d / ".submitit").glob("*/*_log.*")}
    rank1 = "".join(t for n, t in logs.items() if "_1_log" in n)
    assert "distributed_backend=gloo" in "".join(logs.values()) and "global_rank=1(2)" in rank1, sorted(logs)
    assert (d / "0" / "train.log").read_text().count(" untrained: ") == 1
    assert " untrained: " not in rank1


def test_preemption_requeue_on_usr2_and_ctrl_c(slurm, tmp_path):
    """Two held jobs in partition `low` with a 20-minute limit. A `high` job needing all but one free
    CPU pre-empts one of them (PreemptMode=CANCEL). The other gets USR2 early (submitit's pre-emption
    signal): it saves, submitit requeues it and it resumes from its checkpoint; then Ctrl-C on the
    sweep cancels it. Both keep checkpoints, and the summary names them."""
    end = time.time() + WAIT
    while any(s in ("RUNNING", "COMPLETING") for s, _ in slurm.jobs().values()):  # a quiet node: CPUs counted below
        assert time.time() < end, slurm.jobs()
        time.sleep(1)
    d, hold = tmp_path / "s", tmp_path / "hold"
    hold.mkdir()
    for job in (0, 1):
        (hold / str(job)).touch()
    sweep = Sweep(slurm, d, *SLURM, "hydra.launcher.partition=low", "hydra.launcher.timeout_min=20", "model=vae",
                  "seed=0,1", "steps=200", "checkpoint_every=5", *TINY, "dataset._target_=held_toy.HeldToy",
                  f"+dataset.hold={hold}")
    arr = sweep.array()
    for job in (0, 1):
        sweep.checkpoint(job)
    free = slurm_cluster.CPUS - 2
    slurm.run("sbatch", "-p", "high", "-c", str(free + 1), "--mem=100M", "-o", "/dev/null", "--wrap", "sleep 1")
    victims = sweep.until("a pre-empted job", lambda: [j for j in (0, 1) if _state(slurm, f"{arr}_{j}") == "PREEMPTED"])
    victim, other = victims[0], 1 - victims[0]
    assert _state(slurm, f"{arr}_{other}") == "RUNNING"

    log = d / str(other) / "train.log"
    slurm.run("scancel", "--signal=USR2", f"{arr}_{other}")
    sweep.until(f"job {other} requeued", lambda: _state(slurm, f"{arr}_{other}") == "PENDING")
    slurm.run("scontrol", "update", f"JobId={arr}_{other}", "StartTime=now")  # SLURM holds a requeued job 2 min
    sweep.until(f"job {other} resumed", lambda: log.exists() and "resuming" in log.read_text())
    text = log.read_text()
    assert "USR2 at step" in text and f"Requeued job {arr}_{other}" in text, text[-3000:]
    resumed_at = int(text.split("from step ")[-1].split()[0])
    assert resumed_at > 0
    sweep.proc.send_signal(signal.SIGINT)
    assert sweep.wait() == 1, sweep.output()[-4000:]
    assert _state(slurm, f"{arr}_{other}") == "CANCELLED"
    rows = summary(d)
    assert {j: r["status"] for j, r in rows.items()} == {str(victim): "pre-empted", str(other): "cancelled"}, rows
    assert rows[str(victim)]["error"].startswith(f"pre-empted: SLURM job {arr}_{victim} was pre-empted; SIGTERM at")
    assert rows[str(other)]["error"].startswith(f"cancelled: SLURM job {arr}_{other} was cancelled by Ctrl-C")
    assert "Ctrl-C: cancelled SLURM job" in sweep.output()
    assert unfinished(d) == {str(victim): "pre-empted", str(other): "cancelled"}
    assert 0 < _step(d / str(victim)) < 200 and resumed_at <= _step(d / str(other)) < 200


# ---- without a cluster -------------------------------------------------------------------------------
def test_resources_follow_the_trainer_and_threads():
    from conftest import compose
    from dislab.sweep.slurm import resources

    base = {"gpus_per_node": None, "tasks_per_node": 1, "cpus_per_task": None, "mem_gb": 8}
    got = {name: resources(base, compose(over)) for name, over in {
        "default": [], "gpu": ["trainer=gpu", "threads=3"], "ddp": ["trainer=ddp", "trainer.devices=4"],
        "ddp_cpu": ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]}.items()}
    assert got["default"] == {**base, "cpus_per_task": 1}
    assert got["gpu"] == {**base, "gpus_per_node": 1, "cpus_per_task": 3}
    assert got["ddp"] == {**base, "gpus_per_node": 4, "tasks_per_node": 4, "cpus_per_task": 1}
    assert got["ddp_cpu"] == {**base, "tasks_per_node": 2, "cpus_per_task": 1}
    mine = {**base, "gpus_per_node": 2, "cpus_per_task": 6}  # what the user sets wins
    assert resources(mine, compose(["trainer=gpu"])) == mine
    assert resources({**base, "mem_gb": None}, compose(["trainer=ddp", "trainer.devices=4"]))["mem_gb"] == 32
    assert resources({**base, "mem_gb": None}, compose([]))["mem_gb"] == 8
    with pytest.raises(SystemExit):
        resources(base, compose(["trainer=ddp"]))  # devices=auto: how many GPUs would a job ask for?


def test_slurmstepd_last_words_name_the_ending(tmp_path):
    from types import SimpleNamespace

    from dislab.sweep.slurm import logged_ending

    log = tmp_path / "log.err"
    job = SimpleNamespace(paths=SimpleNamespace(stderr=log))
    assert logged_ending(job) is None
    line = "slurmstepd-vm: error: *** {} 12 ON vm CANCELLED AT 2026-11-30T02:26:10{} ***\n"
    for words, state in [("", "CANCELLED"), (" DUE TO TIME LIMIT", "TIMEOUT"), (" DUE TO PREEMPTION", "PREEMPTED"),
                         (" DUE TO NODE FAILURE", "NODE_FAIL")]:
        log.write_text("training...\n" + line.format("JOB", " DUE TO JOB REQUEUE") + line.format("STEP", words))
        assert logged_ending(job) == state, words  # the last words count: a requeued job appends


def test_error_lines_give_the_status_and_udr_json_names_the_unfinished_runs(tmp_path):
    from omegaconf import OmegaConf

    from dislab.sweep.summary import summarize

    said = {"0": None, "1": "ConfigError: cannot resume", "2": "cancelled: SLURM job 7_2 was cancelled (scancel); x",
            "3": "Interrupted: SIGTERM at step 4: checkpoint saved", "4": "timed out: SLURM job 7_4 reached its limit",
            "5": "pre-empted: SLURM job 7_5 was pre-empted", "6": "cannot run: SLURM says PartitionConfig",
            "7": "Requeued: USR2 at step 3", "8": ""}
    for job, line in said.items():
        d = tmp_path / job
        (d / ".hydra").mkdir(parents=True)
        OmegaConf.save(OmegaConf.create({"seed": int(job)}), d / ".hydra" / "config.yaml")
        OmegaConf.save(OmegaConf.create([f"seed={job}"]), d / ".hydra" / "overrides.yaml")
        if line is None:
            (d / "metrics.json").write_text(json.dumps({"metrics": {"mig": 0.5}, "global_step": 3}))
        elif line:
            (d / "error.txt").write_text(line + "\n")
    out = summarize(tmp_path)
    statuses = {r.dir.name: r.status for r in out["runs"]}
    assert statuses == {"0": "done", "1": "failed", "2": "cancelled", "3": "interrupted", "4": "timed out",
                        "5": "pre-empted", "6": "cannot run", "7": "failed", "8": "incomplete"}
    assert unfinished(tmp_path) == {j: s for j, s in statuses.items() if s != "done"}
    assert "9 jobs, 1 done, 2 failed, 1 cancelled, 1 timed out, 1 pre-empted, 1 interrupted, 1 cannot run, " \
           "1 incomplete" in out["text"]


class SendUsr2(Callback):
    """Sends this process USR2 at the end of step ``at``; records the checkpoint's step after the others."""

    def __init__(self, at, run_dir):
        self.at, self.run_dir, self.saved = at, run_dir, []

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.at:
            os.kill(os.getpid(), signal.SIGUSR2)
        elif (self.run_dir / "checkpoints" / "last.ckpt").exists():
            self.saved.append((trainer.global_step, _step(self.run_dir)))


@pytest.mark.parametrize("submitit", ["not requeued", "requeued"])
def test_usr2_saves_a_checkpoint_at_the_next_step_then_runs_submitits_handler(tmp_path, submitit):
    """In-process stand-in for a SLURM job: USR2 at step 3 -> checkpoint at step 4 (checkpoint_every=0,
    so no other save), then the handler found before (submitit's) runs: when it declines to requeue,
    training goes on to the end; when it requeues and exits, the run ends with a line saying so."""
    from conftest import FAST, compose
    from dislab.callbacks.checkpoint import Requeued
    from dislab.train import run

    calls = []

    def submitits(signum, frame):
        calls.append(signum)
        if submitit == "requeued":
            raise SystemExit(-1)
        raise RuntimeError("Job not requeued because: timed-out too many times.")

    previous = signal.signal(signal.SIGUSR2, submitits)
    try:
        spy = SendUsr2(3, tmp_path)
        cfg = compose([*FAST, "steps=8", "checkpoint_every=0", "eval_untrained=false", f"run_dir={tmp_path}"])
        if submitit == "requeued":
            with pytest.raises(Requeued):
                run(cfg, callbacks=(spy,))
            assert (tmp_path / "error.txt").read_text().startswith("Requeued: USR2 at step 4: checkpoint saved to ")
            assert _step(tmp_path) == 4 and not (tmp_path / "metrics.json").exists()
        else:
            run(cfg, callbacks=(spy,))
            assert spy.saved[0] == (4, 4) and json.loads((tmp_path / "metrics.json").read_text())["global_step"] == 8
        assert calls == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_a_sigterm_before_training_ends_the_job_as_training_starts(tmp_path):
    """As at a SLURM job's start: submitit ignores SIGTERM; dislab notes it and stops at on_train_start."""
    from conftest import FAST, compose
    from dislab.callbacks import checkpoint
    from dislab.callbacks.checkpoint import Interrupted
    from dislab.train import run

    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR2)}
    try:
        checkpoint.catch_signals(sigterm=True)
        os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(Interrupted, match=r"SIGTERM before training started \(at step 0\)"):
            run(compose([*FAST, f"run_dir={tmp_path}"]))
        assert (tmp_path / "error.txt").read_text().startswith("Interrupted: SIGTERM before training started")
    finally:
        for s, h in before.items():
            signal.signal(s, h)
        checkpoint._seen[signal.SIGTERM] = checkpoint._seen[signal.SIGUSR2] = False
