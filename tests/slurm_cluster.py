"""A throw-away single-node SLURM cluster for the tests, from Debian's ``slurm-wlm`` and ``munge``.

``start(root)`` writes a minimal ``slurm.conf`` under ``root`` (no systemd, no cgroups:
``proctrack/linuxproc``, ``task/none``, ``select/cons_tres``, no accounting), starts ``munged``,
``slurmctld`` and ``slurmd`` in the foreground as children of this process, on loopback and on free
ports (so two test sessions on one machine do not meet), and waits until the node is idle.
Commands reach it through ``SLURM_CONF`` (``Cluster.env``). Partitions: ``cpu`` (the default),
``gpu`` (the same node, announcing two stand-in GPUs), and ``low``/``high`` on the same node, where
a ``high`` job pre-empts (cancels) ``low`` jobs. ``Unavailable`` says why a cluster cannot start.

``scripts/install_slurm`` (run by ``make test``) installs the packages when missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
COMMANDS = ("sbatch", "srun", "squeue", "scancel", "scontrol", "sinfo")
CPUS, MEMORY_MB = 16, 16000
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
         "DEADLINE"}   # announced to SLURM (slurmd accepts more than the machine has: config_overrides)


class Unavailable(RuntimeError):
    """SLURM cannot be started here (the message says why)."""


@dataclass
class Cluster:
    root: Path
    env: dict[str, str]
    procs: list = field(default_factory=list)

    def run(self, *cmd, check=True, timeout=60) -> str:
        out = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and out.returncode:
            raise RuntimeError(f"{' '.join(cmd)}: {out.stderr.strip()}")
        return out.stdout

    def jobs(self) -> dict[str, tuple[str, str]]:
        """``{job id: (state, reason)}`` of every job SLURM still knows (ended ones included)."""
        out = self.run("squeue", "-h", "-r", "--states=all", "-o", "%i|%T|%r")
        return {i: (s, r) for i, s, r in (line.split("|") for line in out.splitlines() if line)}

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted((self.root / "log").iterdir()))

    def stop(self, timeout: float = 120) -> None:
        """Cancel every job and wait for it to end (its slurmstepd would outlive the daemons), stop
        the daemons, then kill whatever still runs with this cluster's ``SLURM_CONF``."""
        end = time.time() + timeout
        try:
            self.run("scancel", "--user", "root", check=False, timeout=20)
            while time.time() < end and any(s not in ENDED for s, _ in self.jobs().values()):
                time.sleep(1)
        except (OSError, RuntimeError, subprocess.SubprocessError):
            pass
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in reversed(self.procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()
        for pid in self.leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def leftovers(self) -> list[int]:
        """Processes started under this cluster (their environment holds its ``SLURM_CONF``)."""
        mine = f"SLURM_CONF={self.env['SLURM_CONF']}".encode()
        found = []
        for p in Path("/proc").iterdir():
            try:
                if p.name.isdigit() and mine in (p / "environ").read_bytes().split(b"\0"):
                    found.append(int(p.name))
            except OSError:
                pass
        return [pid for pid in found if pid != os.getpid()]


def missing() -> str | None:
    """Why this machine cannot run a cluster, or None."""
    if os.geteuid() != 0:
        return "needs root (slurmd runs jobs as their user)"
    absent = [c for c in (*DAEMONS, *COMMANDS) if not shutil.which(c, path=f"{os.environ.get('PATH', '')}:/usr/sbin")]
    if absent:
        return f"{', '.join(absent)} not installed (apt-get install slurm-wlm munge; make test does it as root)"
    return None


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _conf(root: Path, host: str, ctld_port: int, slurmd_port: int) -> str:
    return f"""\
ClusterName=dislabtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=30
MinJobAge=600
GresTypes=gpu
PreemptType=preempt/partition_prio
PreemptMode=CANCEL
NodeName={host} NodeAddr=127.0.0.1 CPUs={CPUS} RealMemory={MEMORY_MB} Gres=gpu:2 State=UNKNOWN
PartitionName=cpu Nodes={host} Default=YES MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=gpu Nodes={host} MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=low Nodes={host} MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=high Nodes={host} MaxTime=INFINITE State=UP PriorityTier=2
"""


def start(root, timeout: float = 120) -> Cluster:
    """Start a cluster whose files live under ``root``; raises ``Unavailable`` when it cannot."""
    why = missing()
    if why:
        raise Unavailable(why)
    root = Path(root)
    for d in ("munge", "state", "spool", "log"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "munge").chmod(0o700)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    host = socket.gethostname().split(".")[0]
    ctld_port, slurmd_port = _free_ports(2)
    (root / "slurm.conf").write_text(_conf(root, host, ctld_port, slurmd_port))
    (root / "gres.conf").write_text(f"NodeName={host} Name=gpu File=/dev/null,/dev/zero\n")  # stand-ins
    env = {**os.environ, "SLURM_CONF": str(root / "slurm.conf"),
           "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin"}
    cluster = Cluster(root, env)
    m = root / "munge"
    cmds = [["munged", "--foreground", "--force", f"--socket={m}/munge.socket", f"--key-file={key}",
             f"--log-file={m}/munged.log", f"--pid-file={m}/munged.pid", f"--seed-file={m}/munged.seed"],
            ["slurmctld", "-D", "-i"],
            ["slurmd", "-D", "-N", host]]
    try:
        for cmd in cmds:
            log = open(root / "log" / f"{cmd[0]}.out", "w")  # noqa: SIM115 (the daemon holds it)
            cluster.procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                                  stdin=subprocess.DEVNULL, cwd=root))
            log.close()
            time.sleep(0.5 if cmd[0] == "munged" else 0)
        end = time.time() + timeout
        while True:
            dead = [c[0] for c, p in zip(cmds, cluster.procs, strict=True) if p.poll() is not None]
            if dead:
                raise Unavailable(f"{', '.join(dead)} exited at start:\n{cluster.logs()}")
            out = subprocess.run(["sinfo", "-h", "-N", "-p", "cpu", "-o", "%T|%E"], env=env, capture_output=True,
                                 text=True, timeout=30)
            state = out.stdout.strip()
            if state.startswith("idle"):
                return cluster
            if state.startswith(("drain", "inval", "down")) and "Not responding" not in state:
                raise Unavailable(f"the node is {state}:\n{cluster.logs()}")
            if time.time() > end:
                raise Unavailable(f"the node did not become idle in {timeout:.0f} s "
                                  f"(sinfo: {out.stdout.strip() or out.stderr.strip()}):\n{cluster.logs()}")
            time.sleep(0.5)
    except BaseException:
        cluster.stop()
        raise
