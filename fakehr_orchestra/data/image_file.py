"""Opening an image file safely: regular files only, never blocking, never more than a size cap.

A FIFO, socket or device among the images (a jsonl row, or a name inside a GenImage folder) would block `open()`
forever, and a huge file named `.png` would be read whole into every worker. So every reader of image files
(the data stage's checks, eval, preflight) opens them here: `O_NONBLOCK` (a FIFO opens at once instead of waiting
for a writer), then `fstat` on the open descriptor (no race with a rename) refuses anything but a regular file,
and the size is compared with the cap before a byte is read.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # data.max_image_mb's default: far above any photo, far below a disk image


class ImageFileError(OSError):
    """Why a path cannot be read as an image file; `status` is the data stage's record status."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def open_image_fd(path: str, max_bytes: int | None = DEFAULT_MAX_BYTES) -> tuple[int, int]:
    """(open blocking descriptor, size in bytes) of a regular file within the cap; raises ImageFileError.

    The data stage's checker reads through the bare descriptor: a Python file object costs more than reading a
    tiny image does."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ImageFileError("missing", "file not found") from None
    except IsADirectoryError:
        raise ImageFileError("missing", "is a directory") from None
    except OSError as exc:
        raise ImageFileError("missing", f"unreadable: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ImageFileError("missing", "is a directory")
        if not stat.S_ISREG(info.st_mode):
            kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "a socket" if stat.S_ISSOCK(info.st_mode) \
                else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "not a file"
            raise ImageFileError("corrupt", f"not a regular file ({kind}): not read")
        if max_bytes is not None and info.st_size > max_bytes:
            raise ImageFileError("corrupt", f"{info.st_size / 2**20:.0f} MiB is over the image size cap of "
                                            f"{max_bytes / 2**20:.0f} MiB (data.max_image_mb): not read")
        os.set_blocking(fd, True)
        return fd, info.st_size
    except BaseException:
        os.close(fd)
        raise


def open_image_file(path: str, max_bytes: int | None = DEFAULT_MAX_BYTES) -> tuple[BinaryIO, int]:
    """(binary file object, size in bytes) of a regular file within the cap; raises ImageFileError."""
    fd, size = open_image_fd(path, max_bytes)
    try:
        return os.fdopen(fd, "rb"), size
    except BaseException:
        os.close(fd)
        raise


def read_image_bytes(path: str, max_bytes: int | None = DEFAULT_MAX_BYTES) -> bytes:
    """The whole file, after the checks above (and never more than the cap, should it grow meanwhile)."""
    handle, _ = open_image_file(path, max_bytes)
    with handle:
        blob = handle.read(-1 if max_bytes is None else max_bytes + 1)
    if max_bytes is not None and len(blob) > max_bytes:
        raise ImageFileError("corrupt", f"grew past the image size cap of {max_bytes / 2**20:.0f} MiB while read")
    return blob
