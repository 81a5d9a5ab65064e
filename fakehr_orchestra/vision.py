"""The image budget as ms-swift applies it, so every stage sees an image at the same size (one model, one resolution).

ms-swift (4.6, Qwen2.5-VL and Qwen3-VL templates) first rescales an image to at most `--max_pixels` keeping its aspect
(swift/template/vision_utils.py rescale_image: int() of the scaled sides), then qwen-vl-utils' `fetch_image` rounds
the sides to multiples of the family's image factor (smart_resize: 28 for Qwen2.5-VL, 32 for Qwen3-VL, whose template
passes image_patch_size=16) within its own pixel limits (IMAGE_MIN_TOKEN_NUM / IMAGE_MAX_TOKEN_NUM x factor**2;
ms-swift turns the MIN_PIXELS env into IMAGE_MIN_TOKEN_NUM = MIN_PIXELS // factor**2, so a minimum is floored to
whole tokens: `swift_min_pixels`). verl's dataset resizes with
`fetch_image` alone, from the original size, flooring instead: at a 16-token budget a 300x200 image is 15 tokens in
ms-swift and 12 in verl. So the data export computes ms-swift's final size here and writes it into each parquet
image dict (`resized_height` / `resized_width`, which fetch_image takes as they are), and evaluation applies the
same two steps. Both functions are checked against the installed ms-swift and qwen-vl-utils
(tests/test_vision.py).
"""

from __future__ import annotations

import math
from typing import Optional

from .families import MAX_TOKENS, MIN_TOKENS

FACTOR = 28  # Qwen2.5-VL (patch 14 x spatial merge 2): the default `factor`; callers pass their family's
QWEN_MIN_PIXELS = MIN_TOKENS * FACTOR * FACTOR  # qwen-vl-utils 0.0.14 at factor 28 (families.Family.min_pixels)
QWEN_MAX_PIXELS = MAX_TOKENS * FACTOR * FACTOR  # ... (families.Family.max_pixels)
MAX_RATIO = 200


def swift_min_pixels(min_pixels: Optional[int], factor: int = FACTOR) -> Optional[int]:
    """The lower limit qwen-vl-utils applies inside ms-swift for a MIN_PIXELS env value: ms-swift 4.6's
    compat_qwen_vl_utils sets IMAGE_MIN_TOKEN_NUM = MIN_PIXELS // factor**2 and fetch_image uses that x factor**2."""
    if min_pixels is None:
        return None
    return (int(min_pixels) // (factor * factor)) * factor * factor


def rescale(width: int, height: int, max_pixels: Optional[int]) -> tuple[int, int]:
    """ms-swift's rescale_image: (width, height) scaled down to at most max_pixels, aspect kept; never up."""
    if max_pixels is None or max_pixels <= 0 or width * height <= max_pixels:
        return width, height
    ratio = width / height
    height_scaled = math.sqrt(max_pixels / ratio)
    return int(height_scaled * ratio), int(height_scaled)


def smart_resize(height: int, width: int, factor: int = FACTOR, min_pixels: Optional[int] = None,
                 max_pixels: Optional[int] = None) -> tuple[int, int]:
    """qwen-vl-utils' smart_resize: sides rounded to multiples of `factor`, the area kept within the limits."""
    min_pixels = MIN_TOKENS * factor * factor if min_pixels is None else min_pixels
    max_pixels = MAX_TOKENS * factor * factor if max_pixels is None else max_pixels
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise ValueError(f"an image of {width}x{height} is more elongated than qwen-vl-utils accepts ({MAX_RATIO}:1)")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def final_size(width: int, height: int, max_pixels: Optional[int], min_pixels: Optional[int] = None,
               factor: int = FACTOR) -> tuple[int, int]:
    """(height, width) the model sees under ms-swift's two steps (`min_pixels`: the MIN_PIXELS env ms-swift gets)."""
    w, h = rescale(width, height, max_pixels)
    return smart_resize(h, w, factor, min_pixels=swift_min_pixels(min_pixels, factor))


def tokens(width: int, height: int, max_pixels: Optional[int], min_pixels: Optional[int] = None,
           factor: int = FACTOR) -> int:
    """Visual tokens of one image (one token per factor x factor block after the merge)."""
    h, w = final_size(width, height, max_pixels, min_pixels, factor)
    return (h // factor) * (w // factor)
