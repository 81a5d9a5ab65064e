"""Image checks, run on every core: exists, readable, decodes, dimensions, content hash.

A worker reads the file once, hashes the bytes (blake2b-128: duplicates are byte-identical files; a re-encoded copy
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
from typing import Any, Iterable, Iterator, Optional

Check = dict[str, Any]  # {"ok", "reason", "width", "height", "hash", "nbytes", "format", "status"}


def check_image(path: str, mode: str = "header") -> Check:
    """Check one image file; never raises."""
    try:
        with open(path, "rb") as handle:
            blob = handle.read()
    except FileNotFoundError:
        return {"status": "missing", "reason": "file not found"}
    except IsADirectoryError:
        return {"status": "missing", "reason": "is a directory"}
    except OSError as exc:
        return {"status": "missing", "reason": f"unreadable: {exc.strerror or exc}"}
    out: Check = {"hash": hashlib.blake2b(blob, digest_size=16).hexdigest(), "nbytes": len(blob)}
    if not blob:
        return {**out, "status": "corrupt", "reason": "empty file"}
    from PIL import Image, ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(blob)) as img:
                out.update(width=img.size[0], height=img.size[1], format=img.format)
                img.verify()
            if mode == "full":
                with Image.open(io.BytesIO(blob)) as img:
                    img.load()
    except Exception as exc:  # PIL raises many types (OSError, SyntaxError, ValueError, struct.error...)
        text = str(exc) or type(exc).__name__
        return {**out, "status": "corrupt", "reason": f"does not decode: {type(exc).__name__}: {text}"[:300]}
    if not out.get("width") or not out.get("height"):
        return {**out, "status": "corrupt", "reason": "zero-sized image"}
    return {**out, "status": "ok", "reason": None}


def _check_batch(args: tuple[list[str], str]) -> list[Check]:
    paths, mode = args
    return [check_image(p, mode) for p in paths]


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class ImageChecker:
    """A process pool (or in-process when workers == 1) that checks chunks of paths in order."""

    def __init__(self, workers: Optional[int] = None, mode: str = "header", batch: int = 64) -> None:
        if mode not in ("header", "full"):
            raise ValueError(f"check mode must be 'header' or 'full', not {mode!r}")
        self.workers = workers or default_workers()
        self.mode = mode
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
        batches = [(paths[i:i + self.batch], self.mode) for i in range(0, len(paths), self.batch)]
        return self._pool.map_async(_check_batch, batches)

    def check_stream(self, chunks: Iterable[list[Any]], path_of: Any = lambda r: r) -> Iterator[tuple[list[Any], list[Check]]]:
        """For each chunk of items yield (items, checks) in input order; the next chunk is checked meanwhile."""
        if self._pool is None:
            for chunk in chunks:
                yield chunk, [check_image(path_of(item), self.mode) for item in chunk]
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
