"""A Ray cluster for verl: start head + workers (or attach to one), wait until they have joined, run the driver.

Why polling and not `sleep`: a worker joins when its raylet registers with the head's GCS, which takes anywhere from
one second to a minute on a busy cluster. We ask the GCS (through `ray.nodes()`) until the expected number of alive
nodes and CPUs/GPUs are there, or fail after a timeout saying what did join. The poll runs in a subprocess
(`python -m fakehr_orchestra.launch.ray_cluster wait ...`, also used by the Slurm script) so Ray is never imported
into the orchestrator.

Teardown is by process id, never `ray stop` (which kills every Ray process on the machine, other users' included):
each node is a `ray start --block` process that we own; on SIGTERM it shuts down the daemons it started, and
anything still alive afterwards that belongs to this cluster (its processes name our private temp dir) is killed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Optional

from ..engines.plan import Plan
from ..engines.torchrun import without_torchrun_env
from ..numbers import NON_NEGATIVE, POSITIVE, argparse_number
from .environ import child_environ, venv_bin
from .local import run_plan


class RayClusterError(RuntimeError):
    """The cluster did not come up as expected (nodes missing, a `ray start` that exited)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ray_auth_env(environ: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """The RAY_AUTH_MODE every process of one Ray cluster must share.

    Ray >= 2.60 turns token authentication on in `ray start` when a token exists (~/.ray/auth_token, or
    RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH), but a client given an explicit address (our readiness probe, verl's
    driver through RAY_ADDRESS) does not, and then fails with "Failed to connect to Ray cluster". Deciding the mode
    once and exporting it to the head, the workers, the probe and the driver keeps them in agreement.
    """
    lookup = {**os.environ, **(environ or {})}
    if lookup.get("RAY_AUTH_MODE"):
        return {"RAY_AUTH_MODE": lookup["RAY_AUTH_MODE"]}
    home = Path(lookup.get("HOME") or Path.home())
    token_file = Path(lookup["RAY_AUTH_TOKEN_PATH"]) if lookup.get("RAY_AUTH_TOKEN_PATH") else \
        home / ".ray" / "auth_token"
    if lookup.get("RAY_AUTH_TOKEN") or token_file.is_file():
        return {"RAY_AUTH_MODE": "token"}
    return {}


def wait_for_cluster(address: str, nodes: int, cpus: Optional[float] = None, gpus: Optional[float] = None,
                     timeout_s: float = 600, poll_s: float = 1.0) -> dict[str, Any]:
    """Block until `nodes` alive nodes (and at least `cpus` / `gpus`) have joined `address`; return what joined."""
    argv = [sys.executable, "-m", "fakehr_orchestra.launch.ray_cluster", "wait", "--address", address,
            "--nodes", str(nodes), "--timeout", str(timeout_s), "--poll", str(poll_s)]
    if cpus is not None:
        argv += ["--cpus", str(cpus)]
    if gpus is not None:
        argv += ["--gpus", str(gpus)]
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    env.update(ray_auth_env(env))
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout_s + 120)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RayClusterError((lines[-1] if lines else "") or proc.stderr.strip()[-2000:]
                              or f"waiting for the Ray cluster at {address} failed ({proc.returncode})")
    return json.loads(lines[-1])


def _poll(address: str, nodes: int, cpus: Optional[float], gpus: Optional[float], timeout_s: float,
          poll_s: float) -> int:
    """Runs in the `wait` subprocess: connect (retrying until the GCS answers), then poll the node table."""
    import ray

    deadline = time.monotonic() + timeout_s
    seen: dict[str, Any] = {}
    connected = False
    while time.monotonic() < deadline:
        if not connected:
            try:
                ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
                connected = True
            except Exception as exc:  # the head is not up yet; ask again
                seen = {"error": f"{type(exc).__name__}: {exc}"}
                time.sleep(poll_s)
                continue
        alive = [n for n in ray.nodes() if n.get("Alive")]
        total_cpu = sum(n.get("Resources", {}).get("CPU", 0) for n in alive)
        total_gpu = sum(n.get("Resources", {}).get("GPU", 0) for n in alive)
        seen = {"address": address, "nodes": len(alive), "cpus": total_cpu, "gpus": total_gpu,
                "hosts": sorted(n.get("NodeManagerAddress", "?") for n in alive)}
        if len(alive) >= nodes and (cpus is None or total_cpu >= cpus) and (gpus is None or total_gpu >= gpus):
            print(json.dumps(seen), flush=True)
            ray.shutdown()
            return 0
        time.sleep(poll_s)
    want = f"{nodes} nodes" + (f", {cpus:g} CPUs" if cpus is not None else "") + \
        (f", {gpus:g} GPUs" if gpus is not None else "")
    print(f"Ray cluster at {address}: waited {timeout_s:g}s for {want}; have {json.dumps(seen)}. "
          "Check that every worker ran `ray start --address=HEAD:PORT` and can reach the head.", flush=True)
    return 1


class LocalRayCluster:
    """Ray nodes started from this process with `ray start --block` (one process per node), torn down by pid."""

    def __init__(self, work_dir: Optional[Path] = None, port: Optional[int] = None, node_ip: str = "127.0.0.1",
                 environ: Optional[Mapping[str, str]] = None) -> None:
        # short: Ray puts unix sockets under it and their paths must stay under 107 bytes
        self.work_dir = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="frr-"))
        self.port = port or free_port()
        self.node_ip = node_ip
        self.address = f"{node_ip}:{self.port}"
        self.environ = environ
        self.procs: list[subprocess.Popen] = []

    def _start(self, name: str, args: list[str], num_cpus: Optional[int], num_gpus: Optional[int]) -> None:
        temp_dir = self.work_dir / name
        argv = [str(Path(venv_bin()) / "ray"), "start", "--block", f"--node-ip-address={self.node_ip}",
                f"--temp-dir={temp_dir}", "--disable-usage-stats", *args]
        if num_cpus is not None:
            argv.append(f"--num-cpus={num_cpus}")
        if num_gpus is not None:
            argv.append(f"--num-gpus={num_gpus}")
        env = child_environ(Plan(stage="ray", argv=argv), self.environ)
        env.pop("RAY_ADDRESS", None)
        env.update(ray_auth_env(env))
        log = open(self.work_dir / f"{name}.log", "ab")
        try:
            self.procs.append(subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                               stderr=subprocess.STDOUT, start_new_session=True))
        finally:
            log.close()

    def client_env(self) -> dict[str, str]:
        """What a driver needs to join this cluster: its address and the cluster's auth mode."""
        return {**ray_auth_env(self.environ), "RAY_ADDRESS": self.address}

    def start_head(self, num_cpus: Optional[int] = None, num_gpus: Optional[int] = None) -> str:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._start("head", ["--head", f"--port={self.port}", "--include-dashboard=false"], num_cpus, num_gpus)
        return self.address

    def add_worker(self, num_cpus: Optional[int] = None, num_gpus: Optional[int] = None) -> None:
        self._start(f"worker{len(self.procs)}", [f"--address={self.address}"], num_cpus, num_gpus)

    def wait(self, nodes: int, cpus: Optional[float] = None, gpus: Optional[float] = None,
             timeout_s: float = 600) -> dict[str, Any]:
        for proc in self.procs:
            if proc.poll() is not None:
                args = proc.args if isinstance(proc.args, (list, tuple)) else [proc.args]
                raise RayClusterError(f"`{' '.join(map(str, args))}` exited with {proc.returncode}; "
                                      f"see {self.work_dir}/*.log")
        return wait_for_cluster(self.address, nodes, cpus, gpus, timeout_s)

    def pids(self) -> list[int]:
        """Every live process of this cluster: our `ray start` processes and whatever names our temp dir."""
        mine = {p.pid for p in self.procs if p.poll() is None}
        marker = str(self.work_dir).encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if marker in cmdline and state != "Z":
                mine.add(int(entry))
        return sorted(mine)

    def shutdown(self, grace_s: float = 20) -> None:
        """SIGTERM each node (Ray then stops its own daemons); SIGKILL what is left after `grace_s`."""
        for proc in reversed(self.procs):  # workers first, then the head
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and self.pids():
            for proc in self.procs:
                proc.poll()
            time.sleep(0.2)
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILLed above
                pass

    def __enter__(self) -> "LocalRayCluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def run_on_ray(plan: Plan, log_path: Path, nodes: int = 1, gpus_per_node: Optional[int] = None,
               address: Optional[str] = None, head_port: Optional[int] = None, wait_timeout_s: float = 600,
               environ: Optional[Mapping[str, str]] = None, echo: bool = True) -> int:
    """Run a verl driver plan on Ray: attach to `address` (or $RAY_ADDRESS), or start a head here.

    Without an address this node becomes the head; the other `nodes - 1` machines join with
    `ray start --address=<this host>:<port>` (printed), and the driver starts once all have joined.
    """
    lookup = dict(os.environ) if environ is None else {**os.environ, **environ}
    address = address or lookup.get("RAY_ADDRESS") or None
    gpus = nodes * gpus_per_node if gpus_per_node else None
    plan = without_torchrun_env(plan)
    if address:
        print(f"fakehr-orchestra: attaching to the Ray cluster at {address}, waiting for {nodes} node(s)",
              file=sys.stderr)
        wait_for_cluster(address, nodes, gpus=gpus, timeout_s=wait_timeout_s)
        return run_plan(plan, log_path, {**(environ or {}), **ray_auth_env(environ), "RAY_ADDRESS": address},
                        echo=echo)
    host = socket.gethostbyname(socket.gethostname()) if nodes > 1 else "127.0.0.1"
    cluster = LocalRayCluster(port=head_port, node_ip=host, environ=environ)
    try:
        cluster.start_head(num_gpus=gpus_per_node)
        if nodes > 1:
            print(f"fakehr-orchestra: Ray head at {cluster.address}; on each of the other {nodes - 1} node(s) run:\n"
                  f"  ray start --block --address={cluster.address}", file=sys.stderr)
        cluster.wait(nodes, gpus=gpus, timeout_s=wait_timeout_s)
        return run_plan(plan, log_path, {**(environ or {}), **cluster.client_env()}, echo=echo)
    finally:
        cluster.shutdown()


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fakehr_orchestra.launch.ray_cluster")
    sub = parser.add_subparsers(dest="verb", required=True)
    wait = sub.add_parser("wait", help="poll a Ray cluster until the expected nodes/resources have joined")
    wait.add_argument("--address", required=True)
    wait.add_argument("--nodes", type=int, required=True)
    wait.add_argument("--cpus", type=argparse_number(NON_NEGATIVE), default=None)
    wait.add_argument("--gpus", type=argparse_number(NON_NEGATIVE), default=None)
    wait.add_argument("--timeout", type=argparse_number(POSITIVE), default=600)
    wait.add_argument("--poll", type=argparse_number(POSITIVE), default=1.0)
    args = parser.parse_args(argv)
    return _poll(args.address, args.nodes, args.cpus, args.gpus, args.timeout, args.poll)


if __name__ == "__main__":
    sys.exit(main())
