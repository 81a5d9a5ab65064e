"""The prompt text and the image, prepared the way ms-swift prepares them for Qwen2.5-VL and Qwen3-VL.

ms-swift's qwen2_5_vl and qwen3_vl templates puts `<|vision_start|><|image_pad|><|vision_end|>` where the user text has
`<image>`, wraps the turns in Qwen's chat format (the model directory's chat template writes the same), rescales the
image to `--max_pixels` (aspect kept, torchvision Resize = PIL bilinear), then runs qwen_vl_utils' `fetch_image`
(smart resize to multiples of patch*merge; the qwen3_vl template passes the processor's patch size 16, so 32), and
calls the image processor with `do_resize=False`. At inference it
appends `--response_prefix` after the generation prompt. We do the same steps with the same libraries.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

from ...prompts import chat_messages
from ..reader import EvalItem
from .settings import IMAGE_TAG, InferSettings

VISION_PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"


def prompt_text(tokenizer: Any, settings: InferSettings) -> str:
    """The full prompt string (one image placeholder, not yet expanded to the image's token count)."""
    messages = chat_messages(settings.system, settings.user.replace(IMAGE_TAG, VISION_PLACEHOLDER))
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError(f"{settings.model}: the tokenizer has no chat template; eval uses the model directory's "
                         f"own template (the one training used)")
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return text + (settings.response_prefix or "")


def rescale_image(image: Any, max_pixels: int | None) -> Any:
    """ms-swift's `rescale_image` (swift/template/vision_utils.py): torchvision's Resize on a PIL image is PIL's
    bilinear resize (with antialias), to (int(h'), int(w')) keeping the aspect ratio."""
    from PIL import Image

    width, height = image.size
    if max_pixels is None or max_pixels <= 0 or width * height <= max_pixels:
        return image
    ratio = width / height
    height_scaled = math.sqrt(max_pixels / ratio)
    width_scaled = height_scaled * ratio
    return image.resize((int(width_scaled), int(height_scaled)), Image.BILINEAR)


def read_image(path: str) -> Any:
    """The file decoded to RGB, nothing else: what every perturbation of a suite starts from, so a suite decodes each
    image once and perturbs that decode in memory."""
    from PIL import Image

    from ...data.image_file import open_image_file

    file, _ = open_image_file(path)  # a FIFO or a huge file must not hang or flood the eval
    with file, Image.open(file) as handle:
        return handle.convert("RGB")


def prepare_image(image: Any, settings: InferSettings, patch_size: int | None = None) -> Any:
    """A decoded RGB image (read_image) as the model sees it: the settings' perturbation, then ms-swift's two
    resizes; the processor must then be called with do_resize=False. `image` itself is not modified.
    `patch_size`: the processor's (as ms-swift's qwen3_vl template passes it); default the family's."""
    from qwen_vl_utils import fetch_image

    from ...families import get
    from ...vision import swift_min_pixels

    if patch_size is None:
        patch_size = get(settings.family or "qwen2_5_vl").patch_size
    perturbation = getattr(settings, "perturbation", "none")
    if perturbation != "none":  # robustness columns: before the model's own resizes (evaluation/perturb.py)
        from ..perturb import apply

        image = apply(image, perturbation)
    image = rescale_image(image, settings.max_pixels)
    element: dict[str, Any] = {"image": image}
    if settings.min_image_pixels is not None:
        # ms-swift gives MIN_PIXELS to qwen-vl-utils as whole tokens (IMAGE_MIN_TOKEN_NUM): floored the same way
        element["min_pixels"] = swift_min_pixels(settings.min_image_pixels, patch_size * 2)
    if settings.max_image_pixels is not None:
        element["max_pixels"] = settings.max_image_pixels
    return fetch_image(element, image_patch_size=patch_size)


def load_image(path: str, settings: InferSettings, patch_size: int | None = None) -> Any:
    """RGB image after ms-swift's two resizes (read_image, then prepare_image)."""
    return prepare_image(read_image(path), settings, patch_size)


Decoded = Optional[Sequence[Any]]  # per item: its read_image result, or the exception reading it raised


def read_images(paths: Sequence[str]) -> list[Any]:
    """read_image of each path, or the exception it raised (kept: each use of the image reports it)."""
    out: list[Any] = []
    for path in paths:
        try:
            out.append(read_image(path))
        except Exception as exc:  # reported per row by model_images, never a lost batch
            out.append(exc)
    return out


def model_images(items: Sequence[EvalItem], settings: InferSettings, patch_size: int,
                 decoded: Decoded = None) -> tuple[dict[int, Any], dict[int, str]]:
    """({row: the image the model sees}, {row: why that image could not be had}) for a batch. `decoded`: the items'
    read_images, when the caller decoded them once for several perturbations; else each file is read here."""
    images: dict[int, Any] = {}
    errors: dict[int, str] = {}
    for i, item in enumerate(items):
        try:
            source = read_image(item.file_path) if decoded is None else decoded[i]
            if isinstance(source, BaseException):
                raise source
            images[i] = prepare_image(source, settings, patch_size)
        except Exception as exc:  # a corrupt image is one wrong row, reported, never a lost batch
            errors[i] = f"{type(exc).__name__}: {exc}"
    return images, errors
