"""Reading the process table (Linux /proc) to check that a launcher left nothing behind."""

from __future__ import annotations

import os


def _stat(pid: str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            text = fh.read()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()  # state, ppid, pgrp, session, ...


def in_session(sid: int) -> list[int]:
    """Live (non-zombie) processes whose session id is `sid` (a child started with start_new_session)."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            fields = _stat(pid)
            if fields and fields[0] != "Z" and int(fields[3]) == sid:
                found.append(int(pid))
    return found


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            fields = _stat(pid)
            if fields and fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(pid))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    fields = _stat(str(pid))
    return bool(fields) and fields[0] != "Z"
