"""Image checks, run on every core: exists, readable, decodes, dimensions, content hash.

A worker opens the file through image_file.py (regular files only, non-blocking, within data.max_image_mb), hashes
the bytes (blake2b-128: duplicates are byte-identical files; a re-encoded copy
is a different file and is not caught) and asks PIL to open it. "header" mode runs `Image.verify()` (PNG chunk
CRCs and the structure up to IEND, so a truncated PNG fails); "full" mode also decodes every pixel with truncated
images refused (catches a truncated JPEG, which verify() lets through).

`check_stream` keeps exactly two chunks in flight (one being checked by the pool, one being consumed), so memory is
bounded whatever the input size: `Pool.imap` is not used because its feeder thread reads the whole input ahead.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import warnings
from typing import Any, BinaryIO, Iterable, Iterator, Optional

from .image_file import DEFAULT_MAX_BYTES, ImageFileError, open_image_file

SMALL = 4 * 1024 * 1024  # files up to this size are read once into memory; larger ones are streamed
Check = dict[str, Any]  # {"ok", "reason", "width", "height", "hash", "nbytes", "format", "status"}


def check_image(path: str, mode: str = "header", max_bytes: Optional[int] = DEFAULT_MAX_BYTES) -> Check:
    """Check one image file; never raises, never blocks on a FIFO, never holds more than SMALL bytes of it."""
    try:
        handle, size = open_image_file(path, max_bytes)
    except ImageFileError as exc:
        return {"status": exc.status, "reason": exc.reason}
    with handle:
        try:
            source, digest = _hashed(handle, size)
        except OSError as exc:
            return {"status": "missing", "reason": f"unreadable: {exc.strerror or exc}"}
        out: Check = {"hash": digest, "nbytes": size}
        if not size:
            return {**out, "status": "corrupt", "reason": "empty file"}
        from PIL import Image, ImageFile

        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(source) as img:
                    out.update(width=img.size[0], height=img.size[1], format=img.format)
                    img.verify()
                if mode == "full":
                    source.seek(0)
                    with Image.open(source) as img:
                        img.load()
        except Exception as exc:  # PIL raises many types (OSError, SyntaxError, ValueError, struct.error...)
            text = str(exc) or type(exc).__name__
            return {**out, "status": "corrupt", "reason": f"does not decode: {type(exc).__name__}: {text}"[:300]}
    if not out.get("width") or not out.get("height"):
        return {**out, "status": "corrupt", "reason": "zero-sized image"}
    return {**out, "status": "ok", "reason": None}


def _hashed(handle: BinaryIO, size: int) -> tuple[BinaryIO, str]:
    """(what PIL reads, blake2b-128 of the bytes): a small file once into memory, a large one streamed twice."""
    if size <= SMALL:
        blob = handle.read()
        return io.BytesIO(blob), hashlib.blake2b(blob, digest_size=16).hexdigest()
    digest = hashlib.blake2b(digest_size=16)
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    handle.seek(0)
    return handle, digest.hexdigest()


def _check_batch(args: tuple[list[str], str, Optional[int]]) -> list[Check]:
    paths, mode, max_bytes = args
    return [check_image(p, mode, max_bytes) for p in paths]


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class ImageChecker:
    """A process pool (or in-process when workers == 1) that checks chunks of paths in order."""

    def __init__(self, workers: Optional[int] = None, mode: str = "header", batch: int = 64,
                 max_bytes: Optional[int] = DEFAULT_MAX_BYTES) -> None:
        if mode not in ("header", "full"):
            raise ValueError(f"check mode must be 'header' or 'full', not {mode!r}")
        self.workers = workers or default_workers()
        self.mode = mode
        self.max_bytes = max_bytes
        self.batch = batch
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
                yield chunk, [check_image(path_of(item), self.mode, self.max_bytes) for item in chunk]
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
