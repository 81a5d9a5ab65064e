"""The image budget as ms-swift applies it, so every stage sees an image at the same size (one model, one resolution).

ms-swift (4.6, Qwen2.5-VL template) first rescales an image to at most `--max_pixels` keeping its aspect
(swift/template/vision_utils.py rescale_image: int() of the scaled sides), then qwen-vl-utils' `fetch_image` rounds
the sides to multiples of the patch factor (smart_resize: 28 for Qwen2.5-VL) within its own pixel limits (its
MIN_PIXELS / MAX_PIXELS; ms-swift passes MIN_PIXELS through from the environment). verl's dataset resizes with
`fetch_image` alone, from the original size, flooring instead: at a 16-token budget a 300x200 image is 15 tokens in
ms-swift and 12 in verl. So the data export computes ms-swift's final size here and writes it into each parquet
image dict (`resized_height` / `resized_width`, which fetch_image takes as they are), and evaluation applies the
same two steps. Both functions are checked against the installed ms-swift and qwen-vl-utils
(tests/test_vision.py).
"""

from __future__ import annotations

import math
from typing import Optional

FACTOR = 28  # Qwen2.5-VL: patch 14 x spatial merge 2
QWEN_MIN_PIXELS = 4 * FACTOR * FACTOR  # qwen-vl-utils 0.0.14: IMAGE_MIN_TOKEN_NUM 4
QWEN_MAX_PIXELS = 16384 * FACTOR * FACTOR  # ... IMAGE_MAX_TOKEN_NUM 16384
MAX_RATIO = 200


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
    min_pixels = QWEN_MIN_PIXELS if min_pixels is None else min_pixels
    max_pixels = QWEN_MAX_PIXELS if max_pixels is None else max_pixels
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
    """(height, width) the model sees under ms-swift's two steps."""
    w, h = rescale(width, height, max_pixels)
    return smart_resize(h, w, factor, min_pixels=min_pixels)


def tokens(width: int, height: int, max_pixels: Optional[int], min_pixels: Optional[int] = None,
           factor: int = FACTOR) -> int:
    """Visual tokens of one image (one token per factor x factor block after the merge)."""
    h, w = final_size(width, height, max_pixels, min_pixels, factor)
    return (h // factor) * (w // factor)
