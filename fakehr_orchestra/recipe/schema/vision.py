"""The image budget, declared once: every stage sees each image at the same resolution.

SFT and ms-swift's GRPO get it as `--max_pixels` / `--min_pixels`, verl's GRPO in each parquet image dict (verl hands
the dict to qwen-vl-utils' `fetch_image`, which reads `max_pixels` / `min_pixels` from it), evaluation through the
same resize ms-swift applies. `null` keeps the model processor's own budget (Qwen2.5-VL: 12,845,056 pixels).
"""

from __future__ import annotations

from typing import Optional

from pydantic import Field, model_validator

from .base import Strict


class VisionSection(Strict):
    max_pixels: Optional[int] = Field(None, ge=1, description="an image is resized to at most this many pixels")
    min_pixels: Optional[int] = Field(None, ge=1, description="... and at least this many")

    @model_validator(mode="after")
    def _ordered(self) -> "VisionSection":
        if self.max_pixels is not None and self.min_pixels is not None and self.min_pixels > self.max_pixels:
            raise ValueError(f"vision.min_pixels ({self.min_pixels}) is above vision.max_pixels ({self.max_pixels})")
        return self
