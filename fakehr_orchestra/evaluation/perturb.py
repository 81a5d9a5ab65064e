"""Image perturbations for robustness columns (`eval.perturbations`), applied to the decoded image before the
model's own resize, deterministically, in memory (nothing is written to disk).

Specs, as the recipe and the report name them:
  none            the image as it is (the run equals an unperturbed one exactly)
  jpeg:Q          re-encoded as JPEG at quality Q (1..100, PIL's libjpeg encoder), decoded again
  downscale:F     resized by F (0 < F < 1; bicubic, each side at least 1 pixel); the model's resize then sees the
                  smaller image, as a detector given a downscaled copy would
  blur:S          Gaussian blur with standard deviation S pixels (PIL's GaussianBlur, whose radius is the sigma)
"""

from __future__ import annotations

from typing import Any

KINDS = ("none", "jpeg", "downscale", "blur")


def parse(spec: str) -> tuple[str, float]:
    """(kind, value) of a spec; ValueError saying the accepted forms otherwise."""
    forms = "none, jpeg:QUALITY (1-100), downscale:FACTOR (0 < F < 1), blur:SIGMA (> 0)"
    if not isinstance(spec, str):
        raise ValueError(f"perturbation {spec!r} is not a string; write one of: {forms}")
    kind, sep, raw = spec.strip().partition(":")
    if kind == "none" and not sep:
        return "none", 0.0
    if kind not in KINDS or kind == "none" or not sep:
        raise ValueError(f"perturbation {spec!r}: write one of: {forms}")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"perturbation {spec!r}: {raw!r} is not a number; write one of: {forms}") from None
    ok = {"jpeg": value.is_integer() and 1 <= value <= 100, "downscale": 0 < value < 1,
          "blur": value > 0 and value < 1e3}[kind]
    if not ok:
        raise ValueError(f"perturbation {spec!r}: value out of range; write one of: {forms}")
    return kind, value


def apply(image: Any, spec: str) -> Any:
    """The perturbed copy of a PIL RGB image (`image` itself for none)."""
    import io

    from PIL import Image, ImageFilter

    kind, value = parse(spec)
    if kind == "none":
        return image
    if kind == "jpeg":
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=int(value))
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            return decoded.convert("RGB")
    if kind == "downscale":
        width, height = image.size
        return image.resize((max(1, round(width * value)), max(1, round(height * value))), Image.BICUBIC)
    return image.filter(ImageFilter.GaussianBlur(radius=value))


def slug(spec: str) -> str:
    """A folder-name form of a spec (jpeg:30 -> jpeg_30)."""
    return spec.strip().replace(":", "_")
