"""A run directory has one writer (dislab.lock), and result files follow the user's umask (dislab.atomic)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import FAST, ROOT, compose
from dislab import atomic, lock
from dislab.cli import check_overrides, report_errors
from dislab.lock import RunDirInUse, RunLock
from dislab.train import run


def _write_lock(run_dir: Path, age: float = 0.0, **holder) -> Path:
    """A lock as another process would have left it, last touched ``age`` seconds ago."""
    run_dir.mkdir(parents=True, exist_ok=True)
    info = {"host": socket.gethostname(), "pid": os.getpid(), "start_time": lock._start_time(os.getpid()),
            "since": "2026-01-01 00:00:00", "slurm_job": None, "slurm_restart": 0, "token": "theirs", **holder}
    path = run_dir / lock.NAME
    path.write_text(json.dumps(info))
    os.utime(path, (time.time() - age, time.time() - age))
    return path


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# -- one writer ------------------------------------------------------------------------------

def test_a_second_writer_is_refused_in_one_line_naming_the_holder(tmp_path, capsys):
    d = tmp_path / "run"
    d.mkdir()
    with RunLock(d):
        before = sorted(p.name for p in d.iterdir())
        with pytest.raises(SystemExit) as e, report_errors():
            run(compose([*FAST, f"run_dir={d}"]))
        assert sorted(p.name for p in d.iterdir()) == before == [lock.NAME]  # nothing written, no error.txt
    assert e.value.code == 4
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"PID {os.getpid()} on {socket.gethostname()}" in err and str(d) in err
    assert not (d / lock.NAME).exists()  # released on leaving the with-block


def test_the_command_line_refuses_before_hydra_writes_anything(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    with RunLock(d):
        env = {**os.environ, "WANDB_MODE": "offline"}
        out = subprocess.run([sys.executable, "train.py", *FAST, f"hydra.run.dir={d}"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
        assert sorted(p.name for p in d.iterdir()) == [lock.NAME]  # no .hydra/, no train.log
    assert out.returncode == 4, out.stderr[-2000:]
    assert out.stderr.strip().count("\n") == 0 and f"PID {os.getpid()}" in out.stderr


def test_the_lock_is_released_after_success_and_after_failure(run_fast, tmp_path, monkeypatch):
    _, d = run_fast()
    assert (d / "metrics.json").exists() and not (d / lock.NAME).exists()

    import dislab.train

    def boom(*a, **k):
        assert (tmp_path / "failing" / lock.NAME).exists()  # held while training
        raise RuntimeError("boom")

    monkeypatch.setattr(dislab.train, "_train", boom)
    with pytest.raises(RuntimeError, match="boom"):
        run_fast(run_dir=tmp_path / "failing")
    assert not (tmp_path / "failing" / lock.NAME).exists()
    assert "boom" in (tmp_path / "failing" / "error.txt").read_text()
    def sigterm(*a, **k):
        raise SystemExit("SIGTERM at step 3")  # what Lightning's SIGTERM handling becomes in run()

    monkeypatch.setattr(dislab.train, "_train", sigterm)
    with pytest.raises(SystemExit):
        run_fast(run_dir=tmp_path / "failing")
    assert not (tmp_path / "failing" / lock.NAME).exists()


def test_a_stale_lock_of_a_dead_process_does_not_block_a_resume(run_fast, tmp_path, caplog):
    d = tmp_path / "run"
    _write_lock(d, pid=_dead_pid())
    metrics, _ = run_fast(run_dir=d)
    assert "mig" in metrics and not (d / lock.NAME).exists()
    assert "no longer runs on this host" in caplog.text


@pytest.mark.parametrize("holder, taken", [
    ({"pid": "dead"}, True),                                        # this host, PID gone
    ({"start_time": "1"}, True),                                    # this host, PID reused by another process
    ({}, False),                                                    # this host, alive (this very process)
    ({"host": "elsewhere", "pid": 1}, False),                       # another host, refreshed just now
    ({"host": "elsewhere", "pid": 1, "age": lock.STALE_AFTER + 5}, True),  # another host, silent too long
    ({"host": "elsewhere", "pid": 1, "slurm_job": "77", "slurm_restart": 0}, True),  # requeued SLURM job
    ({"host": "elsewhere", "pid": 1, "slurm_job": "78", "slurm_restart": 0}, False),  # another SLURM job
], ids=["dead", "pid-reused", "alive", "other-host", "other-host-stale", "slurm-requeue", "other-slurm-job"])
def test_which_locks_are_stale(tmp_path, monkeypatch, holder, taken):
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    holder = dict(holder)
    age = holder.pop("age", 0.0)
    if holder.get("pid") == "dead":
        holder["pid"] = _dead_pid()
    path = _write_lock(tmp_path, age=age, **holder)
    if taken:
        with RunLock(tmp_path) as mine:
            assert json.loads(path.read_text())["token"] == mine.me["token"]
        assert not path.exists()
    else:
        with pytest.raises(RunDirInUse, match=f"in use by PID {holder.get('pid', os.getpid())} on "):
            RunLock(tmp_path).acquire()
        assert json.loads(path.read_text())["token"] == "theirs"
        if holder.get("host") == "elsewhere" and "slurm_job" not in holder:
            with pytest.raises(RunDirInUse, match=f"expires in .* s, or delete {re.escape(str(path))}"):
                lock.check_free(tmp_path)


@pytest.mark.parametrize("var", ["LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID"])
def test_ddp_ranks_above_zero_share_the_lock_of_rank_zero(tmp_path, monkeypatch, var):
    """Lightning relaunches train.py for each further rank (LOCAL_RANK, NODE_RANK), SLURM starts
    every rank (SLURM_PROCID): neither the command-line check nor run() may refuse them."""
    path = _write_lock(tmp_path)  # rank 0 (alive) holds it
    monkeypatch.setenv(var, "1")
    check_overrides([f"run_dir={tmp_path}"])
    with RunLock(tmp_path):
        pass
    assert json.loads(path.read_text())["token"] == "theirs"
    monkeypatch.setenv(var, "0")
    with pytest.raises(RunDirInUse):
        RunLock(tmp_path).acquire()
    with pytest.raises(SystemExit) as e:
        check_overrides([f"run_dir={tmp_path}"])
    assert e.value.code == 4


def test_the_holder_refreshes_the_lock_while_it_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "HEARTBEAT", 0.05)
    with RunLock(tmp_path) as held:
        os.utime(held.path, (0, 0))
        end = time.time() + 30
        while held.path.stat().st_mtime < 1 and time.time() < end:
            time.sleep(0.05)
        assert held.path.stat().st_mtime > time.time() - 60


# -- permissions -----------------------------------------------------------------------------

@pytest.fixture
def umask():
    """Set the process's umask for one test. fsspec (Lightning's checkpoint writer) reads the umask
    once per process and caches it: forget it on the way in and out."""
    from fsspec.implementations.local import get_umask

    old = os.umask(0o022)

    def set_(mask):
        os.umask(mask)
        get_umask.cache_clear()
    yield set_
    os.umask(old)
    get_umask.cache_clear()


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mask):
    umask(mask)
    for name, write in {"a.json": lambda p: atomic.write_json(p, {"x": 1}),
                        "b.png": lambda p: atomic.write_png(p, [[0]]),
                        "c.npz": lambda p: atomic.write_npz(p, x=[1])}.items():
        write(tmp_path / name)
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~mask, name
    atomic.write_text(tmp_path / "a.json", "{}")  # replacing a file: the new one's mode, not the old one's
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~mask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.png", "c.npz"]  # no temporary left


def test_every_file_of_a_run_its_summary_and_report_follows_the_umask(tmp_path, umask):
    """Checkpoints, metrics.json, history.csv, representation.npz, pictures, .hydra/config.yaml,
    sweep_summary.csv, udr.json and the report, under umask 027: group-readable, no more."""
    from dislab.report.page import build
    from dislab.sweep.summary import summarize

    umask(0o027)
    run_fast_dir = tmp_path / "sweep" / "0"
    run(compose([*FAST, f"run_dir={run_fast_dir}"]))
    summarize(tmp_path / "sweep")
    build([tmp_path / "sweep"])
    files = [p for p in (tmp_path / "sweep").rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"last.ckpt", "metrics.json", "history.csv", "representation.npz", "traversals.png", "traversals.gif",
            "config.yaml", "sweep_summary.csv", "udr.json", "report.html"} <= names, names
    wrong = {str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o777) for p in files
             if p.stat().st_mode & 0o777 != 0o640}
    assert not wrong
