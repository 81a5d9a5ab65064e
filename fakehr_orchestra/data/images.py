"""Image checks, run on every core: exists, readable, decodes, dimensions, content hash.

A worker opens the file through image_file.py (regular files only, non-blocking, within data.max_image_mb), hashes
the bytes (SHA-256, first 128 bits: duplicates are byte-identical files; a re-encoded copy is a different file and is not
caught) and asks PIL to open it. "header" mode runs `Image.verify()` (PNG chunk CRCs and the structure up to IEND,
so a truncated PNG fails); "full" mode decodes every pixel with truncated images refused (catches a truncated JPEG,
which verify() lets through) and, for PNG, also checks the chunk CRCs (the one thing verify() checks that decoding
does not; verify() is a no-op for every other format PIL reads).

Cost matters here: at GenImage scale (1.3M files) this is most of the stage's CPU. A small file is read once with
`os.read` on the bare descriptor, PIL is told the format when the magic bytes say it, and the decompression-bomb
warning filter is set once per batch, not per image.

`check_stream` keeps exactly two chunks in flight (one being checked by the pool, one being consumed), so memory is
bounded whatever the input size: `Pool.imap` is not used because its feeder thread reads the whole input ahead.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import struct
import warnings
import zlib
from typing import Any, BinaryIO, Iterable, Iterator, Optional

from .image_file import DEFAULT_MAX_BYTES, ImageFileError, open_image_fd

SMALL = 4 * 1024 * 1024  # files up to this size are read once into memory; larger ones are streamed
Check = dict[str, Any]  # {"ok", "reason", "width", "height", "hash", "nbytes", "format", "status"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_HINTS = ((PNG_MAGIC, ("PNG",)), (b"\xff\xd8\xff", ("JPEG",)))


def check_image(path: str, mode: str = "header", max_bytes: Optional[int] = DEFAULT_MAX_BYTES) -> Check:
    """Check one image file; never raises, never blocks on a FIFO, never holds more than SMALL bytes of it."""
    return check_images([path], mode, max_bytes)[0]


def check_images(paths: list[str], mode: str = "header", max_bytes: Optional[int] = DEFAULT_MAX_BYTES) -> list[Check]:
    from PIL import Image, ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = False
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return [_check(path, mode, max_bytes) for path in paths]


def _check(path: str, mode: str, max_bytes: Optional[int]) -> Check:
    try:
        fd, size = open_image_fd(path, max_bytes)
    except ImageFileError as exc:
        return {"status": exc.status, "reason": exc.reason}
    try:
        source, digest = _hashed(fd, size)
    except OSError as exc:
        return {"status": "missing", "reason": f"unreadable: {exc.strerror or exc}"}
    finally:
        os.close(fd)
    out: Check = {"hash": digest, "nbytes": size}
    if not size:
        return {**out, "status": "corrupt", "reason": "empty file"}
    from PIL import Image

    try:
        if isinstance(source, bytes):
            blob = source
            formats = next((f for magic, f in _HINTS if blob.startswith(magic)), None)
            with Image.open(io.BytesIO(blob), formats=formats) as img:
                out.update(width=img.size[0], height=img.size[1], format=img.format)
                if mode == "header":
                    img.verify()
                else:
                    if img.format == "PNG":
                        _png_crcs(blob)
                    img.load()
        else:  # a large file, streamed from disk
            with source, Image.open(source) as img:
                out.update(width=img.size[0], height=img.size[1], format=img.format)
                img.verify()
                if mode == "full":
                    source.seek(0)
                    with Image.open(source) as full:
                        full.load()
    except Exception as exc:  # PIL raises many types (OSError, SyntaxError, ValueError, struct.error...)
        text = str(exc) or type(exc).__name__
        return {**out, "status": "corrupt", "reason": f"does not decode: {type(exc).__name__}: {text}"[:300]}
    if not out.get("width") or not out.get("height"):
        return {**out, "status": "corrupt", "reason": "zero-sized image"}
    return {**out, "status": "ok", "reason": None}


def _png_crcs(blob: bytes) -> None:
    """Raise SyntaxError on a PNG chunk whose CRC does not match, as PIL's verify() would (full mode's check)."""
    view = memoryview(blob)  # no copy of each chunk
    pos = len(PNG_MAGIC)
    end = len(blob)
    while pos + 8 <= end:
        length, = struct.unpack_from(">I", blob, pos)
        cid = blob[pos + 4:pos + 8]
        stop = pos + 8 + length
        if stop + 4 > end:
            raise OSError(f"truncated PNG file (chunk {cid!r})")
        if zlib.crc32(view[pos + 4:stop]) != struct.unpack_from(">I", blob, stop)[0]:
            raise SyntaxError(f"broken PNG file (bad header checksum in {cid!r})")
        if cid == b"IEND":
            return
        pos = stop + 4
    raise OSError("truncated PNG file (no IEND chunk)")


def _read_all(fd: int, size: int) -> bytes:
    """The file's `size` bytes (fewer if it shrank); OSError if it grew while read (never reads past size + 1)."""
    parts, got = [], 0
    while got <= size:
        block = os.read(fd, size + 1 - got)
        if not block:
            break
        parts.append(block)
        got += len(block)
    if got > size:
        raise OSError(f"the file grew past its size of {size} bytes while being read")
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _hashed(fd: int, size: int) -> tuple[bytes | BinaryIO, str]:
    """(the bytes, or a file object PIL streams from; SHA-256 of the bytes, first 128 bits): small files are read once.

    SHA-256, not blake2b: with the SHA extensions of today's x86 and ARM CPUs it hashes a 160 kB PNG in 0.12 ms
    against blake2b's 0.28 ms, on a stage whose every core is busy. Changing the hash moves records between train and
    test (the split and the think draws are keyed on it): a data set prepared before the change gets another held-out
    set, and `eval report` refuses to set such runs side by side (their eval sets' digests differ)."""
    if size <= SMALL:
        blob = _read_all(fd, size)
        return blob, hashlib.sha256(blob).hexdigest()[:32]
    handle = os.fdopen(os.dup(fd), "rb")
    try:
        digest = hashlib.sha256()
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    return handle, digest.hexdigest()[:32]


def _check_batch(args: tuple[list[str], str, Optional[int]]) -> list[Check]:
    paths, mode, max_bytes = args
    return check_images(paths, mode, max_bytes)


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class ImageChecker:
    """A process pool (or in-process when workers == 1) that checks chunks of paths in order."""

    def __init__(self, workers: Optional[int] = None, mode: str = "header", batch: Optional[int] = None,
                 max_bytes: Optional[int] = DEFAULT_MAX_BYTES) -> None:
        if mode not in ("header", "full"):
            raise ValueError(f"check mode must be 'header' or 'full', not {mode!r}")
        self.workers = workers or default_workers()
        self.mode = mode
        self.max_bytes = max_bytes
        # a task's size: large enough that pool overhead is small against a header check (~0.1 ms), small enough
        # that a full decode (~1.5 ms) leaves no worker idle long at the end of a chunk
        self.batch = batch or (256 if mode == "header" else 32)
        self._pool: Any = None

    def __enter__(self) -> "ImageChecker":
        if self.workers > 1:
            # spawn, not fork: the caller may have torch / tokenizers threads running (tests, the pipeline), and
            # a forked child can deadlock on a lock held by one of them. Workers import only PIL.
            self._pool = multiprocessing.get_context("spawn").Pool(self.workers)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._pool is not None:
            if exc[0] is None:
                self._pool.close()
            else:
                self._pool.terminate()
            self._pool.join()
            self._pool = None

    def _submit(self, paths: list[str]) -> Any:
        batches = [(paths[i:i + self.batch], self.mode, self.max_bytes) for i in range(0, len(paths), self.batch)]
        return self._pool.map_async(_check_batch, batches)

    def check_stream(self, chunks: Iterable[list[Any]], path_of: Any = lambda r: r) -> Iterator[tuple[list[Any], list[Check]]]:
        """For each chunk of items yield (items, checks) in input order; the next chunk is checked meanwhile."""
        if self._pool is None:
            for chunk in chunks:
                yield chunk, check_images([path_of(item) for item in chunk], self.mode, self.max_bytes)
            return
        pending: Optional[tuple[list[Any], Any]] = None
        for chunk in chunks:
            job = (chunk, self._submit([path_of(item) for item in chunk]))
            if pending is not None:
                items, result = pending
                yield items, [c for batch in result.get() for c in batch]
            pending = job
        if pending is not None:
            items, result = pending
            yield items, [c for batch in result.get() for c in batch]
