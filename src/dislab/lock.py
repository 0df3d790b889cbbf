"""One writer per run directory: ``<run dir>/.lock`` names the process that writes it.

A second process on a directory in use is refused with one line naming the holder (host, PID,
since when). The lock is a file created with ``O_CREAT | O_EXCL`` (atomic on local file systems
and on NFS v3+), holding JSON: host, PID, the PID's start time, SLURM job id and restart count.
It is removed on every exit path that runs Python's ``finally`` (success, exceptions, Ctrl-C,
SIGTERM turned into ``SystemExit``). A lock left behind (SIGKILL, a node crash) is *stale* and
is taken over, so it never blocks a resume, when:

- its holder ran on this host and its PID is gone, or now belongs to another process (the
  PID's start time differs: PIDs are reused);
- its holder is an earlier run of this very SLURM job (same ``SLURM_JOB_ID``, a lower
  ``SLURM_RESTART_COUNT``): SLURM ends a job before it requeues it;
- its holder ran on another host and has not refreshed the lock for ``STALE_AFTER`` seconds.
  A PID on another host cannot be checked, so the holder touches the lock file every
  ``HEARTBEAT`` seconds while it runs (a thread); one that was killed stops doing so. Until then
  the second process is refused with the time left; deleting the file is the manual override.

Why not ``flock``/``fcntl`` alone: NFS maps them onto its own lock protocol (mostly fine), but
Lustre refuses them unless mounted with ``-o flock`` and, with ``-o localflock``, grants them per
node — a silent second writer across nodes. ``flock`` on the directory only serialises the
take-over of a stale lock where the file system supports it.

Under DDP only global rank 0 holds the lock: the other ranks (``RANK``, ``LOCAL_RANK``,
``NODE_RANK`` or ``SLURM_PROCID`` set to a non-zero value; Lightning relaunches the script with
``LOCAL_RANK``/``NODE_RANK``, SLURM sets ``SLURM_PROCID``) are part of the same run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from pathlib import Path

log = logging.getLogger("dislab")
NAME = ".lock"
SWEEP = ".sweep.lock"  # held by the driver of a multirun in its sweep directory (dislab.sweep.callback)
HEARTBEAT = 30.0     # seconds between touches of the lock file by its holder
STALE_AFTER = 300.0  # a lock of another host untouched this long is stale


class RunDirInUse(RuntimeError):
    """Another live process writes this run directory (exit status 4)."""


def is_other_rank() -> bool:
    """True in a DDP process other than global rank 0 (it shares rank 0's run and lock)."""
    for key in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"):
        value = os.environ.get(key, "0").strip() or "0"
        if value.isdigit() and int(value) != 0:
            return True
    return False


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux ``/proc``), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (command) "
    return None if fields[0] == "Z" else fields[19]  # a zombie has ended


def _me() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "start_time": _start_time(os.getpid()),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"), "slurm_job": os.environ.get("SLURM_JOB_ID"),
            "slurm_restart": int(os.environ.get("SLURM_RESTART_COUNT") or 0), "token": secrets.token_hex(8)}


def _alive(pid, start_time: str | None) -> bool:
    """Whether ``pid`` (on this host) still runs the process that started at ``start_time``."""
    try:
        pid = int(pid)
        if pid <= 0:
            return False
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except (ValueError, TypeError, ProcessLookupError):
        return False
    except PermissionError:  # another user's live process
        return True
    now = _start_time(pid)
    if now is None:  # on Linux: gone or a zombie; elsewhere: alive as far as we can tell
        return not Path("/proc/self/stat").exists()
    return start_time is None or now == start_time


def _stale(holder: dict, age: float) -> str | None:
    """Why the lock of ``holder`` (last touched ``age`` seconds ago) is stale, or None if it holds."""
    me = _me()
    if holder.get("slurm_job") and holder["slurm_job"] == me["slurm_job"] \
            and int(holder.get("slurm_restart") or 0) < me["slurm_restart"]:
        return f"an earlier run of SLURM job {holder['slurm_job']}, which SLURM requeued"
    if holder.get("host") == me["host"]:
        if not _alive(holder.get("pid"), holder.get("start_time")):
            return f"PID {holder.get('pid')} no longer runs on this host"
        return None
    if age > STALE_AFTER:
        return f"not refreshed for {age:.0f} s (more than {STALE_AFTER:.0f} s)"
    return None


def _describe(holder: dict) -> str:
    slurm = f", SLURM job {holder['slurm_job']}" if holder.get("slurm_job") else ""
    return f"PID {holder.get('pid')} on {holder.get('host')} (since {holder.get('since')}{slurm})"


def _read(path: Path) -> tuple[dict, float] | None:
    """(holder, seconds since it was last touched), or None when there is no lock."""
    try:
        age = time.time() - path.stat().st_mtime
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        holder = json.loads(text)
        if not isinstance(holder, dict):
            raise ValueError
    except ValueError:  # created but not yet written (or cut short): its writer is starting
        holder = {"host": "?", "pid": "?", "since": "a moment ago"} if age < 10 else {}
    return holder, age


def check_free(run_dir, name: str = NAME) -> None:
    """Raise RunDirInUse if a live process holds ``run_dir`` (takes nothing)."""
    held = _read(Path(run_dir) / name)
    if held and held[0] and _stale(*held) is None:
        raise _refusal(Path(run_dir), name, *held)


def held(run_dir) -> bool:
    """Whether a live process holds ``run_dir`` (its lock is not stale)."""
    try:
        check_free(run_dir)
    except RunDirInUse:
        return True
    return False


def _refusal(run_dir: Path, name: str, holder: dict, age: float) -> RunDirInUse:
    other_host = holder.get("host") not in (socket.gethostname(), "?")
    hint = (f"; if it is gone, the lock expires in {max(0, STALE_AFTER - age):.0f} s, or delete {run_dir / name}"
            if other_host else "")
    what = "sweep directory" if name == SWEEP else "run directory"
    one = "one sweep per sweep directory" if name == SWEEP else "a run directory has one writer"
    return RunDirInUse(f"{what} {run_dir} is in use by {_describe(holder)}: {one}; "
                       f"wait for it to end or use another {what}{hint}")


@contextlib.contextmanager
def serialised(run_dir: Path):
    """flock on the directory while a stale lock is replaced (no-op where unsupported)."""
    try:
        import fcntl

        fd = os.open(run_dir, os.O_RDONLY)
    except (ImportError, OSError):
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


class RunLock:
    """``with RunLock(run_dir):`` hold ``run_dir`` for this process (a no-op in DDP ranks > 0). ``name=SWEEP``:
    a sweep directory's driver lock."""

    def __init__(self, run_dir, name: str = NAME):
        self.run_dir, self.name, self.path = Path(run_dir), name, Path(run_dir) / name
        self.me, self._stop, self._thread = None, threading.Event(), None

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump(self.me, f)
            f.flush()
            os.fsync(f.fileno())
        return True

    def acquire(self) -> RunLock:
        if is_other_rank():
            return self
        self.me = _me()
        if not self._create():
            with serialised(self.run_dir):
                held = _read(self.path)
                why = _stale(*held) if held and held[0] else ("unreadable and old" if held else "gone")
                if why is None:
                    self.me = None
                    raise _refusal(self.run_dir, self.name, *held)
                log.warning("taking over the lock of %s: its holder %s is %s", self.run_dir,
                            _describe(held[0]) if held and held[0] else "?", why)
                self.path.unlink(missing_ok=True)
                if not self._create():
                    self.me = None
                    raise _refusal(self.run_dir, self.name, *(_read(self.path) or ({}, 0.0)))
        self._thread = threading.Thread(target=self._heartbeat, name="dislab-lock", daemon=True)
        self._thread.start()
        return self

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        if self.me is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        held = _read(self.path)
        if held and held[0].get("token") == self.me["token"]:  # never remove a lock taken over from us
            self.path.unlink(missing_ok=True)
        self.me = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
