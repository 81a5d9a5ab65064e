"""Visual tokens per image: the one place the estimator turns pixels into tokens.

A Qwen2.5-VL visual token covers 28 x 28 pixels (patch 14 x spatial merge 2); a Qwen3-VL one 32 x 32 (patch 16 x
merge 2): `pixels_per_token` reads the image factor from the model-family table (fakehr_orchestra/families.py);
everything else here goes through it.
"""

from __future__ import annotations

from typing import Any

from ..families import MAX_TOKENS, MIN_TOKENS, get

# qwen_vl_utils.vision_process.IMAGE_MAX_TOKEN_NUM (0.0.14, installed with ms-swift 4.6): the default cap on visual
# tokens per image when no max_pixels is given (MAX_PIXELS = IMAGE_MAX_TOKEN_NUM * factor**2).
DEFAULT_MAX_TOKENS = MAX_TOKENS
__all__ = ["DEFAULT_MAX_TOKENS", "MIN_TOKENS", "image_tokens", "patches_per_token", "pixels_per_token"]


def pixels_per_token(family: str) -> int:
    """Pixels one visual token covers (image factor squared) for a model family (families.py)."""
    return get(family).pixels_per_token


def image_tokens(max_pixels: int | None, family: str) -> int:
    """Visual tokens of the largest image allowed by `max_pixels` (None: the processor's default cap)."""
    if max_pixels is None:
        return DEFAULT_MAX_TOKENS
    return max(int(max_pixels) // pixels_per_token(family), MIN_TOKENS)


def patches_per_token(spec: Any) -> int:
    """ViT patches behind one visual token (spatial merge squared)."""
    return spec.vision.merge * spec.vision.merge
