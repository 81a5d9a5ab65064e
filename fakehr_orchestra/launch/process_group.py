"""Process groups: what every launched command runs in, so a stop reaches its whole tree.

Why a process group: `swift sft` re-launches itself through torchrun, which starts one Python per rank, which start
data-loader workers. Ctrl-C on our CLI must stop all of them, and a plain `Popen.terminate()` reaches only the
first. Children are started in a new session (so they also do not receive the terminal's Ctrl-C twice) and stopped
by signalling their group: SIGTERM, a grace period, SIGKILL.

The child's group is tied to our fate: a watchdog (watchdog.py, a tiny stdlib-only Python, in a session of its own
so a kill of our group does not reach it) holds the read end of a pipe whose write end only we hold. We tell it when
we are done with the group; if the pipe closes without that word, we died (SIGKILL of our process group included,
or an exception left the child unsupervised), and it stops the child's group. (PR_SET_PDEATHSIG would reach only
the direct child, not torchrun's ranks or their data-loader workers.) The window between starting the child and
starting its watchdog is one fork.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

from . import watchdog

GRACE_S = 10.0  # SIGTERM/SIGINT -> SIGKILL for the group


def signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def group_alive(pgid: int) -> bool:
    """True while any process (zombies excluded) is still in the group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return not os.path.isdir("/proc")


class Watchdog:
    """Stops process group `pgid` if this process dies before calling `release()` (see the module docstring)."""

    def __init__(self, pgid: int, grace_s: float = GRACE_S) -> None:
        read, self._write = os.pipe()  # both non-inheritable: later children never hold the write end
        try:
            self._proc: Optional[subprocess.Popen] = subprocess.Popen(
                [sys.executable, "-I", "-S", watchdog.__file__, str(pgid), str(grace_s)], stdin=read,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError:  # pragma: no cover - our own interpreter always starts; no watchdog rather than no run
            self._proc = None
        finally:
            os.close(read)

    def release(self) -> None:
        """We are done with the group (it has exited or was stopped): the watchdog exits without touching it."""
        self._close(b"x")

    def abandon(self) -> None:
        """We stop supervising while the group may live (an exception): the watchdog stops the group."""
        self._close(b"")

    def _close(self, word: bytes) -> None:
        if self._write < 0:
            return
        try:
            if word:
                os.write(self._write, word)
        except OSError:
            pass
        os.close(self._write)
        self._write = -1
        if self._proc is not None and word:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass
