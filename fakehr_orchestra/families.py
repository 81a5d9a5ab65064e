"""Model families as data: one entry per family, everything the project needs to know about it in one place.

A family is what config.json calls `model_type` (transformers' name). Each entry says how ms-swift names the model
and its template, how an image becomes visual tokens (patch x spatial merge = the image factor qwen-vl-utils rounds
to: 28 for Qwen2.5-VL, 32 for Qwen3-VL), the special-token ids the frameworks hard-code, the transformers classes the
fixtures and eval build, and what verl does with it. Adding a family is adding an entry.

Every fact below is checked against the installed code in tests/test_families.py (ms-swift 4.6's model registry
and template classes, transformers 5.10's config defaults and processors, qwen-vl-utils 0.0.14), so a framework
upgrade that changes one fails there, not in a run. No heavy imports here: render and the CLI read this table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

# qwen_vl_utils/vision_process.py 0.0.14: IMAGE_MIN_TOKEN_NUM / IMAGE_MAX_TOKEN_NUM; the pixel limits are these
# times factor**2, so they scale with the family's factor.
MIN_TOKENS = 4
MAX_TOKENS = 16384


class FamilyError(ValueError):
    """An unknown family, or a model whose config.json names none we know."""


@dataclass(frozen=True)
class Family:
    name: str  # config.json model_type (transformers)
    architectures: tuple[str, ...]  # config.json architectures
    swift_model_type: str  # ms-swift --model_type (swift/model/models/qwen.py register_model)
    swift_template: str  # ms-swift --template (the model meta's template)
    patch_size: int  # vision_config.patch_size
    merge_size: int  # vision_config.spatial_merge_size
    temporal_patch_size: int
    # ms-swift's qwen-vl-utils patch size: its loader calls compat_qwen_vl_utils(image_patch_size=...) and its
    # template passes image_patch_size to fetch_image only for the Qwen3-VL template (version 'v3'); Qwen2.5-VL
    # uses fetch_image's default 14.
    special_tokens: dict[str, int] = field(default_factory=dict)  # token -> id, as config.json / ms-swift use them
    model_class: str = ""  # transformers class the fixture and the eval build
    processor_class: str = ""
    image_processor_class: str = ""
    video_processor_class: str = ""
    thinking_prefix: Optional[str] = None  # ms-swift template meta's thinking_prefix (None: not set)
    verl_notes: str = ""

    @property
    def factor(self) -> int:
        """Image factor: image sides are rounded to multiples of this (patch x merge); one visual token each."""
        return self.patch_size * self.merge_size

    @property
    def pixels_per_token(self) -> int:
        return self.factor * self.factor

    @property
    def min_pixels(self) -> int:
        """qwen-vl-utils' default lower limit for this family (IMAGE_MIN_TOKEN_NUM x factor**2)."""
        return MIN_TOKENS * self.pixels_per_token

    @property
    def max_pixels(self) -> int:
        """qwen-vl-utils' default upper limit for this family (IMAGE_MAX_TOKEN_NUM x factor**2)."""
        return MAX_TOKENS * self.pixels_per_token

    @property
    def image_token_id(self) -> int:
        return self.special_tokens["<|image_pad|>"]

    def processor_kwargs(self) -> dict[str, Any]:
        """What an eval / verl processor call needs so it does not resize a second time (ms-swift: do_resize=False
        after fetch_image)."""
        return {"do_resize": False}


# Qwen's special tokens in Qwen2.5's order, ids 151643..151656 (the same ids in Qwen3-VL's tokenizer, which adds
# tool/fim/think tokens after them).
_QWEN_VISION_TOKENS = {
    "<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645, "<|object_ref_start|>": 151646,
    "<|object_ref_end|>": 151647, "<|box_start|>": 151648, "<|box_end|>": 151649, "<|quad_start|>": 151650,
    "<|quad_end|>": 151651, "<|vision_start|>": 151652, "<|vision_end|>": 151653, "<|vision_pad|>": 151654,
    "<|image_pad|>": 151655, "<|video_pad|>": 151656,
}
# Qwen3's added tokens after the vision block (Qwen3 / Qwen3-VL tokenizer_config.json added_tokens_decoder).
_QWEN3_EXTRA_TOKENS = {
    "<tool_call>": 151657, "</tool_call>": 151658, "<|fim_prefix|>": 151659, "<|fim_middle|>": 151660,
    "<|fim_suffix|>": 151661, "<|fim_pad|>": 151662, "<|repo_name|>": 151663, "<|file_sep|>": 151664,
    "<tool_response>": 151665, "</tool_response>": 151666, "<think>": 151667, "</think>": 151668,
}
_QWEN3_VERL = ("verl 0.9: RLHFDataset takes image_patch_size from processor.image_processor.patch_size (16), so "
               "its fetch_image rounds to 32; verl/models/transformers/qwen3_vl.py patches the model for "
               "remove-padding / Ulysses; the image dicts' resized_height/width (our export) are rounded to 32.")

FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family(
        name="qwen2_5_vl", architectures=("Qwen2_5_VLForConditionalGeneration",),
        swift_model_type="qwen2_5_vl", swift_template="qwen2_5_vl",
        patch_size=14, merge_size=2, temporal_patch_size=2, special_tokens=dict(_QWEN_VISION_TOKENS),
        model_class="Qwen2_5_VLForConditionalGeneration", processor_class="Qwen2_5_VLProcessor",
        image_processor_class="Qwen2VLImageProcessor", video_processor_class="Qwen2VLVideoProcessor",
        verl_notes="verl 0.9: RLHFDataset takes image_patch_size from processor.image_processor.patch_size (14); "
                   "the image dicts' resized_height/width (our export) are rounded to 28."),
    Family(
        name="qwen3_vl", architectures=("Qwen3VLForConditionalGeneration",),
        swift_model_type="qwen3_vl", swift_template="qwen3_vl",
        patch_size=16, merge_size=2, temporal_patch_size=2,
        special_tokens={**_QWEN_VISION_TOKENS, **_QWEN3_EXTRA_TOKENS},
        model_class="Qwen3VLForConditionalGeneration", processor_class="Qwen3VLProcessor",
        image_processor_class="Qwen2VLImageProcessor", video_processor_class="Qwen3VLVideoProcessor",
        thinking_prefix="<think>\n", verl_notes=_QWEN3_VERL),
    Family(
        name="qwen3_vl_moe", architectures=("Qwen3VLMoeForConditionalGeneration",),
        swift_model_type="qwen3_vl_moe", swift_template="qwen3_vl",
        patch_size=16, merge_size=2, temporal_patch_size=2,
        special_tokens={**_QWEN_VISION_TOKENS, **_QWEN3_EXTRA_TOKENS},
        model_class="Qwen3VLMoeForConditionalGeneration", processor_class="Qwen3VLProcessor",
        image_processor_class="Qwen2VLImageProcessor", video_processor_class="Qwen3VLVideoProcessor",
        thinking_prefix="<think>\n", verl_notes=_QWEN3_VERL + " MoE: verl's FSDP wraps each expert bank."),
)}


def names() -> list[str]:
    return sorted(FAMILIES)


def get(name: str) -> Family:
    """The family called `name`; an unknown one is an error naming the known ones (with a did-you-mean)."""
    try:
        return FAMILIES[name]
    except KeyError:
        import difflib

        guess = difflib.get_close_matches(str(name), names(), n=1)
        hint = f"did you mean '{guess[0]}'? " if guess else ""
        raise FamilyError(f"unknown model family {name!r}: {hint}known: {', '.join(names())}") from None


def from_config(cfg: dict[str, Any], source: str = "config.json") -> Family:
    """The family a config.json describes: its model_type, else its architectures."""
    model_type = cfg.get("model_type")
    if model_type in FAMILIES:
        return FAMILIES[model_type]
    archs = set(cfg.get("architectures") or ())
    for fam in FAMILIES.values():
        if archs & set(fam.architectures):
            return fam
    raise FamilyError(f"{source}: model_type {model_type!r} / architectures {sorted(archs)} is not a model family "
                      f"fakehr-orchestra knows ({', '.join(names())})")


def model_dir(model: Any, workdir: str | Path = ".") -> Optional[Path]:
    """The model folder when `model` is a local path holding a config.json (None for hub ids, ${...} refs)."""
    text = str(model or "")
    if not text or "${" in text:
        return None
    path = Path(text) if Path(text).is_absolute() else Path(workdir) / text
    return path if (path / "config.json").is_file() else None


def on_disk(model: Any, workdir: str | Path = ".") -> Optional[Family]:
    """The family of a model on disk, read from its config.json; None when it is not on disk."""
    folder = model_dir(model, workdir)
    if folder is None:
        return None
    cfg_path = folder / "config.json"
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FamilyError(f"{cfg_path}: cannot read ({exc})") from None
    return from_config(cfg, str(cfg_path))


def stage_models(model: Any) -> list[tuple[str, Any]]:
    """(recipe key, model) of every stage that names a policy model: the family applies to all of them."""
    out = []
    for section in ("sft", "grpo"):
        stage = getattr(model, section, None)
        if stage is not None and getattr(stage, "model", None):
            out.append((f"{section}.model", stage.model))
    return out


def of_recipe(model: Any) -> Optional[Family]:
    """The recipe's family: `model_family` (which load_recipe fills from the first model found on disk when the
    recipe leaves it null). None: neither declared nor readable (render then leaves --model_type to ms-swift)."""
    name = getattr(model, "model_family", None)
    return get(name) if name else None


def require(model: Any, what: str) -> Family:
    """The recipe's family, or an error saying which key to set (for arithmetic that cannot guess)."""
    fam = of_recipe(model)
    if fam is None:
        raise FamilyError(f"{what} needs the model family: set model_family ({', '.join(names())}) or point "
                          "sft.model at a model folder with a config.json")
    return fam
