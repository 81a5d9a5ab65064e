"""What an export needs from a recipe, resolved once: prompts (effective text), answer format, image mode."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ...prompts import effective
from .. import DataError


@dataclass(frozen=True)
class ExportSettings:
    answer_format: str  # fake_hr1 | fakevlm_r1
    user: str  # effective user prompt, exactly one <image>
    system: Optional[str]  # effective system prompt (verl parquet, eval readers)
    sft_rows_system: bool  # whether SFT jsonl rows carry the system turn (False: ms-swift's --system does)
    grpo_rows_system: bool  # same for the ms-swift GRPO jsonl
    images: str = "path"  # verl parquet: path | bytes
    think_fraction: float = 1.0
    seed: int = 0
    chunk_size: int = 1024
    max_pixels: Optional[int] = None  # vision: the verl parquet's image dicts carry it (qwen-vl-utils reads them)
    min_pixels: Optional[int] = None
    image_factor: int = 28  # the model family's (families.py): resized sides are multiples of it


def _flag_system(stage: str, flag: Any, system: Optional[str]) -> bool:
    """True when rows must carry the system turn (no flag); checks a flag agrees with prompt.system."""
    if flag is None:
        return system is not None
    if effective(str(flag)) != system:
        raise DataError(f"{stage} passes --system that differs from prompt.system: ms-swift would train on "
                        f"one and the verl / eval prompts would use the other. Set it to ${{prompt.system}}.")
    return False


def settings_from_recipe(model: Any) -> ExportSettings:
    user = effective(model.prompt.user) or ""
    if user.count("<image>") != 1:
        raise DataError(f"prompt.user must contain exactly one <image> placeholder (one image per record), "
                        f"got {user.count('<image>')} in {user!r}")
    system = effective(model.prompt.system)
    sft_flag = (model.sft.args or {}).get("system") if model.sft else None
    grpo_flag = (model.grpo.swift_args or {}).get("system") if model.grpo else None
    if model.prompt.answer_format != model.method:
        raise DataError(f"prompt.answer_format {model.prompt.answer_format!r} differs from method "
                        f"{model.method!r}: the SFT targets and the reward would disagree")
    return ExportSettings(
        answer_format=model.prompt.answer_format, user=user, system=system,
        sft_rows_system=_flag_system("sft.args.system", sft_flag, system),
        grpo_rows_system=_flag_system("grpo.swift_args.system", grpo_flag, system),
        images=model.data.images, think_fraction=model.data.think_fraction, seed=model.data.split.seed,
        chunk_size=model.data.chunk_size, max_pixels=model.vision.max_pixels, min_pixels=model.vision.min_pixels,
        image_factor=_image_factor(model))


def _image_factor(model: Any) -> int:
    """The family's image factor; a budget without a known family cannot be turned into verl's image sizes."""
    from ...families import FamilyError, require

    if model.vision.max_pixels is None and model.vision.min_pixels is None:
        return 28  # no budget: the parquet carries no sizes, so no factor is used
    try:
        return require(model, "the verl export's image sizes (vision:)").factor
    except FamilyError as exc:
        raise DataError(str(exc)) from None
