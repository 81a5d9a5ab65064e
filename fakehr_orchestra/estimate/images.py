"""Visual tokens per image: the one place the estimator turns pixels into tokens.

A Qwen2.5-VL visual token covers 28 x 28 pixels (patch 14 x spatial merge 2); a Qwen3-VL one 32 x 32 (patch 16 x
merge 2). When the project's model-family table lands (fakehr_orchestra/models/families.py), `pixels_per_token`
should read the image factor from there; everything else here goes through it.
"""

from __future__ import annotations

from typing import Any

# qwen_vl_utils.vision_process.IMAGE_MAX_TOKEN_NUM (0.0.14, installed with ms-swift 4.6): the default cap on visual
# tokens per image when no max_pixels is given (MAX_PIXELS = IMAGE_MAX_TOKEN_NUM * factor**2).
DEFAULT_MAX_TOKENS = 16384
MIN_TOKENS = 4  # qwen_vl_utils IMAGE_MIN_TOKEN_NUM: MIN_PIXELS = 4 * factor**2

_FACTOR = {"qwen2_5_vl": 28, "qwen3_vl": 32, "qwen3_vl_moe": 32}


def pixels_per_token(family: str) -> int:
    """Pixels one visual token covers (image factor squared) for a model family."""
    try:
        factor = _FACTOR[family]
    except KeyError:
        raise ValueError(f"no image factor known for model family {family!r}") from None
    return factor * factor


def image_tokens(max_pixels: int | None, family: str) -> int:
    """Visual tokens of the largest image allowed by `max_pixels` (None: the processor's default cap)."""
    if max_pixels is None:
        return DEFAULT_MAX_TOKENS
    return max(int(max_pixels) // pixels_per_token(family), MIN_TOKENS)


def patches_per_token(spec: Any) -> int:
    """ViT patches behind one visual token (spatial merge squared)."""
    return spec.vision.merge * spec.vision.merge
