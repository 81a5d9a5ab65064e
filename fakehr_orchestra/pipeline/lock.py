"""One runner per run dir: an advisory lock (flock) on RUN_DIR/run.lock, naming its holder.

Two `run --resume` on one run dir would both run stages: two trainers writing one output dir. The first takes an
exclusive flock on `run.lock` and writes who it is (pid, host, the pid's start time, the command) into it; a second
finds the lock held and stops with that holder's name. The kernel drops a flock when its holder dies, however it
dies (SIGKILL included), so a lock file left by a dead run is stale by construction and simply taken over; the holder
text it still holds is only ever read while the lock is held. (flock works across NFS clients on Linux, where it is
mapped to POSIX byte-range locks.)

Why the lock file is written in place and not through io.py's atomic rename: the flock belongs to the file's inode,
so a rename would leave the lock on a file nobody opens. The holder text is informational; the flock is the lock.

`holder()` / `alive()` are also how `status` tells a stage recorded as running from one whose runner died.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .rundir import ManifestWriteError, RunDirError

LOCK = "run.lock"


class RunDirBusy(RunDirError):
    """Another live process holds the run dir's lock."""


def _start_ticks(pid: int) -> int | None:
    """The process's start time (clock ticks since boot, /proc/PID/stat field 22): with the pid, an identity that a
    reused pid does not share."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()
    return int(fields[19]) if len(fields) > 19 and fields[0] != "Z" else None


def holder() -> dict[str, Any]:
    """This process, as a lock file or a running stage records it."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "pid_start": _start_ticks(os.getpid()),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": " ".join(sys.argv)[:500]}


def alive(who: dict[str, Any]) -> bool | None:
    """Whether the recorded process still runs: None when it ran on another host (this one cannot see it)."""
    pid = who.get("pid")
    if not isinstance(pid, int) or who.get("host") != socket.gethostname():
        return None
    start = _start_ticks(pid)
    if start is None:
        return False
    recorded = who.get("pid_start")
    return recorded is None or recorded == start


def describe_holder(who: dict[str, Any]) -> str:
    if not who:
        return "a process that has not written its name yet"
    text = f"pid {who.get('pid')} on {who.get('host')} since {who.get('since')}"
    if who.get("command"):
        text += f" ({who['command']})"
    return text


def _read(fd: int) -> dict[str, Any]:
    """The holder text; the holder writes it just after taking the lock, so an empty file is retried briefly."""
    for _ in range(20):
        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, 65536)
        if raw.strip():
            try:
                data = json.loads(raw)
                return data if isinstance(data, dict) else {}
            except ValueError:
                pass
        time.sleep(0.05)
    return {}


def _read_now(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        data = json.loads(os.read(fd, 65536) or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def locked(run_dir: Path, name: str = LOCK) -> Iterator[dict[str, Any]]:
    """Hold RUN_DIR's lock for the block; RunDirBusy (naming the holder) if a live process holds it. `name`: the
    lock file (the data stage locks its workdir with its own, data.lock)."""
    run_dir = Path(run_dir)
    path = run_dir / name
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:  # a read-only file system (EROFS), no permission, a file where the folder should be
        raise ManifestWriteError(f"cannot use {run_dir} as a run dir: {exc.strerror or exc} ({path}); use a "
                                 "folder on a writable file system") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = _read(fd)
            hint = "wait for it to finish (`fakehr-orchestra status " + str(run_dir) + "`) or stop it"
            if alive(who) is False:  # the named process is gone, yet the lock is held: a child it left inherited it
                hint = (f"that process is gone, but one it started still holds {path} (find it with `fuser {path}`) "
                        "; stop it")
            raise RunDirBusy(f"{run_dir} is in use by another run: {describe_holder(who)}; {hint}. Only one run "
                             "may write a run dir at a time") from None
        me = holder()
        previous = _read_now(fd)
        if previous:  # its holder died without releasing: the kernel dropped the flock, the text stayed
            me["stale"] = previous
        try:  # best effort: on a full disk the lock still holds, only its holder's name is missing
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, (json.dumps(me) + "\n").encode())
            os.fsync(fd)
        except OSError:
            pass
        try:
            yield me
        finally:
            os.ftruncate(fd, 0)  # released: no holder to name (the flock goes with the close)
    finally:
        os.close(fd)
