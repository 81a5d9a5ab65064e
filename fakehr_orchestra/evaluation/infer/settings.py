"""What inference asks and how: built from the recipe so it is exactly what training taught.

- system / user / response prefix: the recipe's `prompt:` section in its effective form (ms-swift turns each
  literal backslash-n into a newline; `fakehr_orchestra.prompts.effective` does the same);
- chat template: the model directory's own (the one ms-swift's qwen2_5_vl / qwen3_vl template reproduces);
- model family (fakehr_orchestra/families.py): the evaluated model's config.json, else the recipe's model_family;
  its image factor (28 / 32) is the resize arithmetic;
- image size: the recipe's one budget (`vision:`), applied as ms-swift applies it: a rescale to max_pixels, then
  qwen_vl_utils' smart resize with vision.min_pixels (fakehr_orchestra/vision.py);
- the response prefix is appended after the generation prompt (as ms-swift does at inference) and given to the
  answer parser, so a response generated after it parses right.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

from ...prompts import effective

IMAGE_TAG = "<image>"


class SettingsError(ValueError):
    """The recipe cannot give a definite inference setting; the message says which key to set."""


@dataclass(frozen=True)
class InferSettings:
    model: str
    backend: str
    system: Optional[str]  # effective text; None: the chat template's default system turn (as ms-swift)
    user: str  # effective text with exactly one <image>
    response_prefix: Optional[str]  # effective text, appended after the generation prompt
    answer_format: str
    max_pixels: Optional[int]  # ms-swift's --max_pixels rescale (None: no rescale)
    min_image_pixels: Optional[int]  # training env MIN_PIXELS for qwen_vl_utils (None: its default)
    max_image_pixels: Optional[int]  # training env MAX_PIXELS for qwen_vl_utils (None: its default)
    batch_size: int
    max_new_tokens: int
    temperature: float
    top_p: float
    seed: int
    dtype: str
    device: Optional[str]
    tensor_parallel_size: int
    gpu_memory_utilization: float
    answer_scores: bool
    max_model_len: Optional[int] = None  # vLLM only, like the two below: none of them changes an answer
    enforce_eager: bool = False
    bootstrap_samples: int = 1000  # not for inference: recorded so `eval score` uses the recipe's values
    confidence: float = 0.95
    recipe_name: str = ""
    recipe_digest: str = ""
    family: str = ""  # the evaluated model's family (families.py): its patch size is fetch_image's image_patch_size
    perturbation: str = "none"  # applied to each image before the resizes (evaluation/perturb.py)

    def fingerprint(self) -> dict[str, Any]:
        """The settings that change answers: a resumed run must match them (batch size and device may differ)."""
        skip = {"batch_size", "device", "gpu_memory_utilization", "tensor_parallel_size", "recipe_digest",
                "bootstrap_samples", "confidence", "max_model_len", "enforce_eager"}
        if self.perturbation == "none":  # as every run before perturbations existed: such a file resumes
            skip.add("perturbation")
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in skip}

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def from_recipe(recipe: Any, model: str, backend: Optional[str] = None, batch_size: Optional[int] = None,
                device: Optional[str] = None) -> InferSettings:
    """Settings for `model` from a loaded Recipe (its `.model`); CLI options override the eval section."""
    rm = recipe.model
    ev, prompt = rm.eval, rm.prompt
    user = effective(prompt.user) or ""
    if user.count(IMAGE_TAG) != 1:
        raise SettingsError(f"prompt.user must contain exactly one {IMAGE_TAG} (has {user.count(IMAGE_TAG)}): "
                            f"each eval row is one image")
    return InferSettings(
        model=str(model),
        backend=backend or ev.backend,
        system=effective(prompt.system),
        user=user,
        response_prefix=effective(prompt.response_prefix),
        answer_format=prompt.answer_format,
        max_pixels=rm.vision.max_pixels,
        min_image_pixels=rm.vision.min_pixels,
        max_image_pixels=None,  # qwen-vl-utils' own cap after the rescale, as in ms-swift
        batch_size=batch_size or ev.batch_size,
        max_new_tokens=ev.max_new_tokens,
        temperature=ev.temperature,
        top_p=ev.top_p,
        seed=ev.seed,
        dtype=ev.dtype,
        device=device or ev.device or rm.cluster.device,
        tensor_parallel_size=ev.tensor_parallel_size,
        gpu_memory_utilization=ev.gpu_memory_utilization,
        answer_scores=ev.answer_scores,
        max_model_len=ev.max_model_len,
        enforce_eager=ev.enforce_eager,
        bootstrap_samples=ev.bootstrap_samples,
        confidence=ev.confidence,
        recipe_name=rm.name,
        recipe_digest=recipe.digest(),
        family=_family(rm, str(model)),
    )


def _family(rm: Any, model: str) -> str:
    """The evaluated model's family: its config.json when on disk (a downloaded Qwen3-VL evaluated zero-shot under a
    Qwen2.5-VL recipe is still Qwen3-VL), else the recipe's model_family."""
    from ...families import FamilyError, of_recipe, on_disk

    try:
        fam = on_disk(model, rm.workdir) or of_recipe(rm)
    except FamilyError as exc:
        raise SettingsError(str(exc)) from None
    if fam is None:
        raise SettingsError(f"{model}: no config.json there and the recipe sets no model_family; set model_family")
    return fam.name


def drift_notes(recipe: Any) -> list[str]:
    """Places where the SFT stage was given a prompt other than `prompt:`; eval follows `prompt:` and says so."""
    rm = recipe.model
    notes = []
    if rm.sft:
        for key in ("system", "response_prefix"):
            value = rm.sft.args.get(key)
            wanted = getattr(rm.prompt, key)
            if key in rm.sft.args and value != wanted:
                notes.append(f"sft.args.{key} differs from prompt.{key}; eval asks with prompt.{key}")
    return notes
