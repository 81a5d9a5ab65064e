"""The one bounded reader: every file or HTTP body this tool reads whole is read here, with a size cap, a deadline
and (files) regular files only.

- Files: `read_file` opens through data/image_file.py (O_NONBLOCK, fstat on the descriptor: a FIFO, socket or
  device such as /dev/zero is refused at once instead of hanging or filling memory; the size is checked before a
  byte is read and again while reading).
- HTTP bodies: `read_urllib_body` (urllib: its `timeout` is per socket read, so a server that drips a byte a
  second would never time out; here every read gets only what is left of one overall deadline) and
  `read_aiohttp_body` (aiohttp's ClientTimeout covers time; this caps the size: a 256 MB reply is refused after
  the cap, not held in memory whole).
"""

from __future__ import annotations

import socket
import time
from typing import Any, Optional

from .data.image_file import ImageFileError, open_image_file

CHUNK = 64 * 1024


class BoundedReadError(OSError):
    """A file or body that is not a regular file, is over its size cap, or did not arrive within its deadline."""


def read_file(path: str, max_bytes: int) -> bytes:
    """The whole regular file at `path`, at most `max_bytes`; raises BoundedReadError saying why not. Only the size
    fstat reports is read: a /proc or /sys file says 0 bytes and yields nothing (it is not data)."""
    try:
        handle, size = open_image_file(path, max_bytes)
    except ImageFileError as exc:
        raise BoundedReadError(f"{path}: {exc.reason}") from None
    with handle:
        return handle.read(size) if size else b""


def _too_big(read: int, max_bytes: int, what: str) -> BoundedReadError:
    return BoundedReadError(f"{what} is over its size cap of {max_bytes} bytes ({read} bytes read): not read further")


def read_urllib_body(response: Any, max_bytes: int, deadline: float, what: str = "the reply") -> bytes:
    """A urllib response's body, at most `max_bytes`, complete before `deadline` (time.monotonic())."""
    length = response.headers.get("Content-Length") if getattr(response, "headers", None) else None
    if length and length.isdigit() and int(length) > max_bytes:
        raise _too_big(int(length), max_bytes, what)
    sock = _socket_of(response)
    parts: list[bytes] = []
    total = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BoundedReadError(f"{what} did not arrive in time ({total} bytes after the deadline)")
        if sock is not None:
            sock.settimeout(left)
        try:
            chunk = response.read1(CHUNK) if hasattr(response, "read1") else response.read(CHUNK)
        except (socket.timeout, TimeoutError):
            raise BoundedReadError(f"{what} did not arrive in time ({total} bytes before the deadline)") from None
        if not chunk:
            return b"".join(parts)
        total += len(chunk)
        if total > max_bytes:
            raise _too_big(total, max_bytes, what)
        parts.append(chunk)


def _socket_of(response: Any) -> Optional[socket.socket]:
    """The socket under an http.client response (to give each read the time left), when it can be found."""
    raw = getattr(getattr(response, "fp", None), "raw", None)
    sock = getattr(raw, "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


async def read_aiohttp_body(response: Any, max_bytes: int, what: str = "the reply") -> bytes:
    """An aiohttp response's body, at most `max_bytes` (the session's ClientTimeout bounds the time)."""
    if response.content_length is not None and response.content_length > max_bytes:
        raise _too_big(response.content_length, max_bytes, what)
    parts: list[bytes] = []
    total = 0
    while True:
        chunk = await response.content.read(CHUNK)
        if not chunk:
            return b"".join(parts)
        total += len(chunk)
        if total > max_bytes:
            raise _too_big(total, max_bytes, what)
        parts.append(chunk)
