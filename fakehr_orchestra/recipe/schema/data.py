"""Data: where the raw sets are, how labels are written in each, how to split and what to export for each stage.

Relative paths are resolved against the recipe's `workdir` (itself relative to the current directory), the folder
the training commands run in, so the exported absolute image paths point where the frameworks will look.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from .base import Strict


class SourceSection(Strict):
    name: str
    kind: Literal["fakeclue", "genimage", "jsonl", "folders"]
    path: str = Field(description="FakeClue json / GenImage root / jsonl file / the folder of a label-named set "
                                  "(<set>/<generator>/<label folder>/*)")
    image_root: Optional[str] = Field(None,
                                      description="where relative image paths resolve; default: as released (FakeClue "
                                                  "data_json/<split>.json -> FakeClue/<split>/, anything else: the "
                                                  "file's own folder)")
    # How labels are written in this source; never guessed. fakeclue: 0=fake,1=real. genimage: ai/nature folders.
    label_convention: Literal["fakeclue", "genimage", "text", "one_is_fake", "one_is_real", "bool_is_fake",
                              "folders"]
    label_folders: Optional[dict[str, Literal["real", "fake"]]] = Field(
        None, description="kind folders: which folder name means which label, e.g. {0_real: real, 1_fake: fake} "
                          "(AIGI-Holmes, CNNDetection: 0 = real, the opposite of FakeClue); with label_convention: "
                          "folders")
    generators: Optional[list[str]] = Field(
        None, description="genimage / folders: read only these generators (folder names); null: all")
    exclude_generators: Optional[list[str]] = Field(
        None, description="genimage / folders: leave these generators out (the cross-generator protocol)")
    annotations: Optional[str] = Field(
        None, description="a jsonl of reasoning annotations for this source's images ({image, explanation} or "
                          "{image, pairs}, one side of a pair may be null): they replace the source's own text for "
                          "those images, and every row must name an image of the source (data/sources/annotations.py)")
    split: Optional[Literal["train", "test", "val"]] = Field(
        None,
        description="Force a split for every record of this source (\"val\" is kept as the held-out split: it is "
                    "written as \"test\").")

    @model_validator(mode="after")
    def _folders_declared(self) -> "SourceSection":
        folders = self.kind == "folders"
        if folders != (self.label_convention == "folders"):
            raise ValueError("a folders source is read with label_convention: folders (and only it: the labels "
                             "are the declared label_folders map)")
        if folders and not self.label_folders:
            raise ValueError("a folders source needs label_folders, e.g. {0_real: real, 1_fake: fake}: which "
                             "folder name means which label is declared, never guessed")
        if not folders and self.label_folders is not None:
            raise ValueError(f"label_folders is for kind folders, not {self.kind}")
        if self.kind not in ("genimage", "folders") and (self.generators is not None or
                                                         self.exclude_generators is not None):
            raise ValueError(f"generators / exclude_generators select folders of sources laid out by generator "
                             f"(genimage, folders), not {self.kind}")
        return self


class SplitSection(Strict):
    test_fraction: float = Field(0.0, ge=0.0, lt=1.0,
                                 description="Share of each (source, label) stratum moved to test, among records that "
                                             "have no split of their own (GenImage's train/val folders and a source's "
                                             "`split:` are kept as they are).")
    seed: int = 0


class DataSection(Strict):
    workdir: str = Field("data", description="manifests and exports are written here")
    sources: list[SourceSection] = Field(default_factory=list)
    split: SplitSection = Field(default_factory=SplitSection)
    images: Literal["path", "bytes"] = Field("path", description="verl parquet: image paths, or embed the bytes")
    think_fraction: float = Field(1.0, ge=0.0, le=1.0,
                                  description="Fake-HR1 SFT: share of explained examples in think form")
    check: Literal["header", "full"] = Field("header",
                                             description="Image checks: \"header\" opens the image and runs PIL's "
                                                         "verify() (catches truncated PNGs, bad headers); \"full\" also "
                                                         "decodes every pixel (catches truncated JPEGs too; several "
                                                         "times slower).")
    workers: Optional[int] = Field(None, ge=1, description="image-check processes; null = every core")
    chunk_size: int = Field(1024, ge=1,
                            description="records held in memory at once per stage (bounded whatever the size)")
    strict: bool = Field(False, description="any corrupt/missing/duplicate/leaked/mislabelled record fails the stage")
    max_loss: float = Field(0.01, ge=0.0, le=1.0,
                            description="a source losing more than this share of its records to missing / corrupt "
                                        "images fails the stage (a wrong image root must not pass as a smaller data "
                                        "set); a source with no records always does")
    max_image_mb: float = Field(64.0, gt=0.0,
                                description="an image file larger than this is refused unread (a disk image named "
                                            ".png must not be read into each worker)")
