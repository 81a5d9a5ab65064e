"""The watchdog program: stops a process group when the launcher that started it dies without saying it is done.

Run as `python -I -S .../watchdog.py PGID GRACE_S` with the read end of a pipe as stdin whose write end only the
launcher holds (process_group.Watchdog starts it). One byte on the pipe: the launcher is done with the group, exit.
End of file without that byte: the launcher died (SIGKILL of its process group included, or an exception left the
child unsupervised), so the group is stopped as a Ctrl-C would: SIGTERM, a grace period, SIGKILL.

Standard library only, and run isolated (-I -S) from its file rather than imported through the package: it must
start the same whatever the environment, PYTHONPATH or the package's installation, and import nothing of ours.
"""

import os
import signal
import sys
import time
from typing import Optional


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def watch(pgid: int, grace_s: float) -> None:
    """Wait for the launcher's word on stdin; without it, stop group `pgid`."""
    try:
        word = os.read(0, 1)
    except OSError:
        word = b""
    if word:
        return  # the launcher is done with the group
    try:
        os.killpg(pgid, signal.SIGTERM)
    except OSError:
        return
    deadline = time.monotonic() + grace_s
    while group_exists(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass


def main(argv: Optional[list[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    watch(int(args[0]), float(args[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
