"""A one-node Slurm cluster for tests: munged + slurmctld + slurmd, all configured and kept under a temp dir.

Nothing is written outside that dir (munge gets its own key and socket; Slurm finds the socket via AuthInfo), the
daemons run in the foreground as our children and are stopped by pid. See FRAMEWORKS.md "Slurm on one machine".

The node declares FAKE_GPUS generic resources of type gpu, backed by plain files in the temp dir (no device): Slurm
grants them like GPUs and sets SLURM_GPUS_ON_NODE in the job, which is what the job scripts read; nothing can compute
on them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator, Optional

FAKE_GPUS = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SlurmCluster:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.conf = self.root / "slurm.conf"
        self.procs: list[subprocess.Popen] = []
        self.host = socket.gethostname().split(".")[0]

    @property
    def env(self) -> dict[str, str]:
        """What clients (sbatch, squeue, the CLI) need in their environment to talk to this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def write_config(self) -> None:
        for sub in ("state", "spool", "log", "munge"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root / "munge", 0o700)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        os.chmod(key, 0o400)
        cpus = os.cpu_count() or 1
        r = self.root
        for i in range(FAKE_GPUS):
            (r / f"gpu{i}").touch()
        (r / "gres.conf").write_text(f"NodeName={self.host} Name=gpu File={r}/gpu[0-{FAKE_GPUS - 1}]\n")
        self.conf.write_text(f"""ClusterName=fakehrtest
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={r}/munge/munge.sock
SlurmUser=root
SlurmdUser=root
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
GresTypes=gpu
ReturnToService=2
SchedulerType=sched/backfill
MinJobAge=3600
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={cpus} Gres=gpu:{FAKE_GPUS} State=UNKNOWN
PartitionName=test Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
""")

    def _spawn(self, argv: list[str], name: str) -> None:
        log = open(self.root / "log" / f"{name}.out", "ab")
        env = {**os.environ, **self.env}
        try:
            self.procs.append(subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, start_new_session=True))
        finally:
            log.close()

    def start(self, timeout_s: float = 60) -> None:
        self.write_config()
        m = self.root / "munge"
        self._spawn([shutil.which("munged") or "munged", "--foreground", "--force",
                     f"--key-file={m}/munge.key", f"--socket={m}/munge.sock", f"--pid-file={m}/munged.pid",
                     f"--log-file={m}/munged.log", f"--seed-file={m}/munged.seed"], "munged")
        self._wait(lambda: (m / "munge.sock").exists(), timeout_s, "munged socket")
        self._spawn([shutil.which("slurmctld") or "/usr/sbin/slurmctld", "-D", "-c", "-i", "-f", str(self.conf)],
                    "slurmctld")
        self._spawn([shutil.which("slurmd") or "/usr/sbin/slurmd", "-D", "-f", str(self.conf), "-N", self.host],
                    "slurmd")
        self._wait(self._node_idle, timeout_s, "the node to be idle in sinfo")

    def _node_idle(self) -> bool:
        for proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}; logs in {self.root}/log:\n"
                                   + self.logs())
        out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True,
                             env={**os.environ, **self.env})
        return out.returncode == 0 and out.stdout.strip().startswith("idle")

    def _wait(self, ready, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"timed out waiting for {what}; logs:\n{self.logs()}")

    def logs(self) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*")) + [self.root / "munge" / "munged.log"]:
            if path.is_file():
                parts.append(f"== {path.name}\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    def cancel_all(self, timeout_s: float = 60) -> None:
        """Cancel every job of this (private) cluster and wait until none is left, so no job step outlives the
        daemons (slurmstepd is not a child of slurmd)."""
        env = {**os.environ, **self.env}
        if not any(proc.poll() is None for proc in self.procs):
            return
        subprocess.run(["scancel", "--user", str(os.getuid())], env=env, capture_output=True, timeout=30)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            out = subprocess.run(["squeue", "-h", "-o", "%i"], env=env, capture_output=True, text=True, timeout=30)
            if out.returncode != 0 or not out.stdout.strip():
                return
            time.sleep(1)

    def stop(self, grace_s: float = 15) -> None:
        try:
            self.cancel_all()
        except (OSError, subprocess.SubprocessError):
            pass
        for proc in reversed(self.procs):  # slurmd, slurmctld, then munged
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=grace_s)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def slurm_cluster(root: Path) -> Iterator[SlurmCluster]:
    """Generator for a pytest fixture: start the cluster under `root`, yield it, stop it."""
    cluster = SlurmCluster(root)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def available() -> Optional[str]:
    """None when the Slurm daemons and munge are installed and we are root; otherwise what is missing."""
    missing = [exe for exe in ("munged", "slurmctld", "slurmd", "sbatch", "squeue") if shutil.which(exe) is None
               and not Path(f"/usr/sbin/{exe}").exists()]
    if missing:
        return f"{', '.join(missing)} not installed (`make system-deps` / launch/install_test_deps.sh installs them)"
    if os.geteuid() != 0:
        return "the one-node Slurm test cluster needs root (slurmd runs jobs as their user)"
    return None
