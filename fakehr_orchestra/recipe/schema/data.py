"""Data: where the raw sets are, how labels are written in each, how to split and what to export for each stage."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from .base import Strict


class SourceSection(Strict):
    name: str
    kind: Literal["fakeclue", "genimage", "jsonl"]
    path: str  # FakeClue json / GenImage root / jsonl file
    image_root: Optional[str] = None  # where relative image paths are resolved (default: the file's folder)
    # How labels are written in this source; never guessed. fakeclue: 0=fake,1=real. genimage: ai/nature folders.
    label_convention: Literal["fakeclue", "genimage", "text", "one_is_fake", "one_is_real", "bool_is_fake"]
    split: Optional[Literal["train", "test", "val"]] = None  # force a split for every record of this source


class SplitSection(Strict):
    test_fraction: float = 0.0
    seed: int = 0


class DataSection(Strict):
    workdir: str = "data"  # manifests and exports are written here
    sources: list[SourceSection] = Field(default_factory=list)
    split: SplitSection = Field(default_factory=SplitSection)
    images: Literal["path", "bytes"] = "path"  # verl parquet: image paths, or embed the bytes
    think_fraction: float = 1.0  # Fake-HR1 SFT: share of examples with an explanation rendered in think form
