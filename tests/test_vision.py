"""The image-budget arithmetic (fakehr_orchestra/vision.py) against the installed code it mirrors: qwen-vl-utils'
smart_resize and ms-swift's rescale_image, on sizes hypothesis picks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakehr_orchestra import vision
from fakehr_orchestra.families import FAMILIES
from tests.conftest import require_module

sizes = st.integers(min_value=8, max_value=4000)


@settings(max_examples=300, deadline=None)
@given(w=sizes, h=sizes, budget=st.one_of(st.none(), st.integers(min_value=784, max_value=4_000_000)),
       low=st.one_of(st.none(), st.integers(min_value=784, max_value=3136)))
def test_smart_resize_and_rescale_equal_the_installed_ones(w: int, h: int, budget: int | None,
                                                          low: int | None) -> None:
    require_module("qwen_vl_utils")
    require_module("torchvision")
    from PIL import Image
    from qwen_vl_utils.vision_process import smart_resize
    from swift.template.vision_utils import rescale_image

    if max(w, h) / min(w, h) > vision.MAX_RATIO:
        with pytest.raises(ValueError):
            vision.smart_resize(h, w)
        return
    assert vision.smart_resize(h, w, 28, min_pixels=low) == smart_resize(h, w, 28, min_pixels=low)
    if w * h <= 1_000_000:  # ms-swift's rescale on a real image (its int() of the scaled sides)
        assert vision.rescale(w, h, budget) == rescale_image(Image.new("RGB", (w, h)), budget).size


@settings(max_examples=300, deadline=None)
@given(w=sizes, h=sizes, low=st.one_of(st.none(), st.integers(min_value=1, max_value=8192)),
       factor=st.sampled_from(sorted({f.factor for f in FAMILIES.values()})))
def test_every_family_factor_against_qwen_vl_utils_fetch_image(w: int, h: int, low: int | None, factor: int) -> None:
    """The final size at each family's factor (Qwen3-VL: 32) is what qwen-vl-utils' fetch_image gives inside
    ms-swift: image_patch_size = factor / 2, IMAGE_MIN_TOKEN_NUM = MIN_PIXELS // factor**2 (ms-swift's compat)."""
    require_module("qwen_vl_utils")
    require_module("torchvision")
    from qwen_vl_utils import vision_process

    if max(w, h) / min(w, h) > vision.MAX_RATIO or w * h > 1_000_000:
        return
    old = vision_process.IMAGE_MIN_TOKEN_NUM
    try:
        if low is not None:  # what ms-swift's compat_qwen_vl_utils + patch_qwen_vl_utils do with MIN_PIXELS
            vision_process.IMAGE_MIN_TOKEN_NUM = low // factor ** 2
        from PIL import Image
        image = vision_process.fetch_image({"image": Image.new("RGB", (w, h))}, image_patch_size=factor // 2)
    finally:
        vision_process.IMAGE_MIN_TOKEN_NUM = old
    assert vision.final_size(w, h, None, low, factor) == (image.height, image.width)


def test_a_budget_bites_and_ms_swift_rounds_where_a_direct_resize_floors() -> None:
    assert vision.final_size(300, 200, 16 * 784) == (84, 140)  # rescaled to 137x91, then rounded: 15 tokens
    assert vision.smart_resize(200, 300, max_pixels=16 * 784) == (84, 112)  # verl's own path would give 12
    assert vision.tokens(300, 200, None) == 77 and vision.tokens(300, 200, 16 * 784) == 15
