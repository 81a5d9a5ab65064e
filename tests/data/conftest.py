"""Small generated FakeClue-like and GenImage-like trees with every kind of damage the converters must survive."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import pytest


def png_bytes(seed: int, size: int = 32, fmt: str = "PNG") -> bytes:
    from PIL import Image

    rng = random.Random(seed)
    img = Image.new("RGB", (size, size), tuple(rng.randrange(256) for _ in range(3)))
    img.putpixel((rng.randrange(size), rng.randrange(size)), (rng.randrange(256), 0, 0))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def noise_png(size: int = 64) -> bytes:
    import os

    from PIL import Image
    buf = io.BytesIO()
    Image.frombytes("RGB", (size, size), os.urandom(size * size * 3)).save(buf, format="PNG")
    return buf.getvalue()


def write(path: Path, blob: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    return str(path)


def fc_record(rel: str, label: Any, cate: str = "animal", verdict: str | None = None) -> dict[str, Any]:
    verdict = verdict or ("fake" if label == 0 else "real")
    return {"image": rel, "label": label, "cate": cate, "conversations": [
        {"from": "human", "value": "<image>\nIs this image real or fake?"},
        {"from": "gpt", "value": f"This is a {verdict} image. First clue here. Second clue here."}]}


@pytest.fixture
def damaged_fakeclue(tmp_path: Path) -> dict[str, Any]:
    """train.json + test.json; returns the paths and what each damaged record should be reported as."""
    root = tmp_path / "fakeclue"
    good = [write(root / f"train/ok{i}.png", png_bytes(i)) for i in range(8)]
    write(root / "train/corrupt.png", b"this is not an image at all")
    blob = noise_png()
    write(root / "train/truncated.png", blob[: len(blob) // 2])
    write(root / "train/empty.png", b"")
    write(root / "train/dup.png", png_bytes(3))  # same bytes (and label) as ok3
    leaked = png_bytes(200)
    write(root / "train/leak.png", leaked)
    write(root / "test/leak_copy.png", leaked)
    test_imgs = [write(root / f"test/t{i}.png", png_bytes(300 + i)) for i in range(4)]
    train = [fc_record(f"train/ok{i}.png", i % 2) for i in range(8)]
    train += [fc_record("train/corrupt.png", 0), fc_record("train/truncated.png", 0), fc_record("train/empty.png", 1),
              fc_record("train/missing.png", 0), fc_record("train/dup.png", 1), fc_record("train/leak.png", 0),
              fc_record("train/ok0.png", "fake"),  # a text label under the 0/1 convention
              fc_record("train/ok1.png", 1, verdict="fake"),  # label says real, explanation says fake
              {"label": 0, "cate": "animal"}, "not a record"]
    test = [fc_record(f"test/t{i}.png", i % 2) for i in range(4)] + [fc_record("test/leak_copy.png", 0)]
    (root / "train.json").write_text(json.dumps(train))
    (root / "test.json").write_text(json.dumps(test))
    return {"root": root, "train": root / "train.json", "test": root / "test.json", "good": good, "test_imgs": test_imgs}


@pytest.fixture
def damaged_genimage(tmp_path: Path) -> Path:
    root = tmp_path / "genimage"
    for g, gen in enumerate(("SDv1", "GAN")):
        for split in ("train", "val"):
            for c, cls in enumerate(("ai", "nature")):
                for i in range(3):
                    fmt = "PNG" if cls == "ai" else "JPEG"
                    write(root / gen / split / cls / f"{i}.{fmt.lower()}", png_bytes(1000 * g + 100 * c + 10 * i
                                                                                     + (split == "val"), 32, fmt))
    write(root / "SDv1/train/ai/bad_header.png", b"\x89PNG\r\n\x1a\nGARBAGE")
    write(root / "SDv1/train/ai/.hidden.png", b"ignored")
    write(root / "GAN/train/fake/0.png", png_bytes(5000))  # not a GenImage class folder
    # the release's nested layout
    write(root / "ADM/imagenet_ai_adm/train/ai/0.png", png_bytes(6000))
    write(root / "ADM/imagenet_ai_adm/train/nature/0.jpeg", png_bytes(6001, 32, "JPEG"))
    return root


def source(name: str, kind: str, path: Any, convention: str, **kw: Any) -> Any:
    from fakehr_orchestra.recipe.schema.data import SourceSection
    return SourceSection(name=name, kind=kind, path=str(path), label_convention=convention, **kw)


def by_path(manifest: Path) -> dict[str, list[Any]]:
    from fakehr_orchestra.data.manifest import iter_manifest
    out: dict[str, list[Any]] = {}
    for rec in iter_manifest(manifest):
        out.setdefault(Path(rec.path).name if rec.path else f"<none:{rec.where}>", []).append(rec)
    return out
