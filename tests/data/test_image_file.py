"""Image files that would hang or flood the data stage: a FIFO among the images (a jsonl
row, or a name inside a GenImage folder) and a 2 GB file named .png. Each is refused at once, unread, with a
reason; the rest of the source imports; eval and preflight open images the same way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fakehr_orchestra.data.image_file import ImageFileError, open_image_file, read_image_bytes
from fakehr_orchestra.data.images import check_image
from tests.conftest import ROOT

from .conftest import png_bytes, write


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A GenImage generator folder with 4 good images, a FIFO named .png and a sparse 2 GiB .png."""
    gen = tmp_path / "GenImage" / "Midjourney" / "imagenet_midjourney" / "train"
    for i in range(2):
        write(gen / "ai" / f"{i:03d}_midjourney.png", png_bytes(i, 16, "PNG"))
        write(gen / "nature" / f"n01440764_{i}.JPEG", png_bytes(10 + i, 16, "JPEG"))
    os.mkfifo(gen / "ai" / "fifo.png")
    with open(gen / "nature" / "huge.png", "wb") as handle:
        handle.truncate(2 * 1024**3)  # sparse: no disk used, but 2 GiB to read
    return tmp_path


def test_fifo_and_huge_file_are_refused_unread(tree: Path) -> None:
    gen = tree / "GenImage" / "Midjourney" / "imagenet_midjourney" / "train"
    start = time.monotonic()
    fifo = check_image(str(gen / "ai" / "fifo.png"))
    huge = check_image(str(gen / "nature" / "huge.png"), "full")
    assert time.monotonic() - start < 5
    assert fifo["status"] == "corrupt" and "FIFO" in fifo["reason"], fifo
    assert huge["status"] == "corrupt" and "over the image size cap" in huge["reason"], huge
    assert check_image(str(gen / "nature" / "huge.png"), max_bytes=None)["status"] == "corrupt"  # streamed, no cap
    with pytest.raises(ImageFileError, match="FIFO"):
        open_image_file(str(gen / "ai" / "fifo.png"))
    with pytest.raises(ImageFileError, match="cap"):
        read_image_bytes(str(gen / "nature" / "huge.png"), max_bytes=1024)
    assert len(read_image_bytes(str(gen / "ai" / "000_midjourney.png"))) > 0


CHILD = r"""
import json, resource, sys
from fakehr_orchestra.data.importer import import_sources
from fakehr_orchestra.recipe.schema.data import SourceSection
src = [SourceSection(name="g", kind="genimage", path=sys.argv[1], label_convention="genimage"),
       SourceSection(name="j", kind="jsonl", path=sys.argv[2], label_convention="text")]
counts = import_sources(src, sys.argv[3], workers=2, check="full", max_loss=0.5)
print(json.dumps({"counts": counts, "rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def test_import_with_a_fifo_and_a_huge_file_finishes_with_bounded_memory(tree: Path, tmp_path: Path) -> None:
    """The real import (2 spawn workers, full decode) in a child with a timeout: before the fix it hung on the FIFO
    forever, and the 2 GiB file cost each worker 2 GiB."""
    gen = tree / "GenImage" / "Midjourney" / "imagenet_midjourney" / "train"
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"file_path": str(p), "label": lab}) + "\n" for p, lab in
                            ((gen / "ai" / "fifo.png", "fake"), (gen / "ai" / "000_midjourney.png", "fake"))))
    out = tmp_path / "manifest.jsonl"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tree / "GenImage"), str(rows), str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["counts"] == {"ok": 5, "corrupt": 3}, result
    assert result["rss_mb"] < 500, result  # a worker never held the 2 GiB file
    reasons = [json.loads(line)["reason"] for line in out.read_text().splitlines()]
    assert sum("FIFO" in (r or "") for r in reasons) == 2 and sum("cap" in (r or "") for r in reasons) == 1


def test_eval_and_preflight_open_images_the_same_way(tree: Path) -> None:
    from fakehr_orchestra.preflight.data_checks import _image_size

    fifo = str(tree / "GenImage" / "Midjourney" / "imagenet_midjourney" / "train" / "ai" / "fifo.png")
    assert _image_size(fifo) is None  # refused at once (it used to block)
    from fakehr_orchestra.evaluation.infer import prompting

    with pytest.raises(ImageFileError, match="FIFO"):
        prompting.load_image(fifo, None, 14)  # type: ignore[arg-type]  # refused before the settings are read
