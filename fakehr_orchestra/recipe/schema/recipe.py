"""The whole recipe as one strict model, and what the schema declares at a key path (for did-you-mean)."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field, field_validator

from .base import Strict
from .cluster import ClusterSection
from .critic import CriticSection
from .data import DataSection
from .evaluation import EvalSection
from .prompt import PromptSection
from .stages import GrpoSection, SftSection
from .vision import VisionSection


class WrittenFor(Strict):
    """The framework versions the recipe's flag names and keys are written for; render translates from these."""

    swift: str = "4.6"
    verl: str = "0.9"


class RecipeModel(Strict):
    name: str = Field(description="the recipe's name (run manifests and reports show it; default run dirs are "
                                  "named after it, so it is one file-name word: letters, digits, . _ -)",
                      pattern=r"^[A-Za-z0-9_][A-Za-z0-9._-]*$", max_length=100)
    method: Literal["fake_hr1", "fakevlm_r1"] = Field(description="which paper's answer format and reward")
    description: Optional[str] = Field(None, description="one line for `recipes ls` and reports")
    workdir: str = Field(".", description="the folder every stage runs in; relative paths are taken from it")
    vars: dict[str, Any] = Field(default_factory=dict, description="free values for ${vars.x} references")
    written_for: WrittenFor = Field(default_factory=WrittenFor,
                                    description="the framework versions the flag names are written for")
    model_family: Optional[str] = Field(
        None, description="the policy model's family (fakehr_orchestra/families.py): ms-swift's --model_type/--template "
                          "and the image arithmetic follow it; null: read from the model's config.json when the model "
                          "is on disk (load fills it in, so the resolved recipe shows it); a declared family that "
                          "disagrees with the model on disk is a validate error")
    cluster: ClusterSection = Field(default_factory=ClusterSection, description="nodes, GPUs, rendezvous")
    prompt: PromptSection = Field(default_factory=PromptSection, description="the prompt as the model sees it")
    vision: VisionSection = Field(default_factory=VisionSection, description="the image budget, for every stage")
    data: DataSection = Field(default_factory=DataSection, description="sources, split and exports (data stage)")
    sft: Optional[SftSection] = Field(None, description="the SFT stage (ms-swift)")
    grpo: Optional[GrpoSection] = Field(None, description="the GRPO stage (verl, or ms-swift's own GRPO)")
    critic: CriticSection = Field(default_factory=CriticSection,
                                  description="FakeVLM-R1's judge model (off by default)")
    eval: EvalSection = Field(default_factory=EvalSection, description="inference on the test split and metrics")

    @field_validator("model_family")
    @classmethod
    def _known_family(cls, value: Optional[str]) -> Optional[str]:
        from ...families import get

        if value is not None:
            get(value)  # FamilyError (a ValueError): unknown family, with a did-you-mean
        return value


def model_at(path: tuple[Any, ...]) -> type[Strict] | None:
    """The pydantic model class that owns the mapping at `path`, for did-you-mean candidates."""
    model: Any = RecipeModel
    for part in path:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return None
        ann = field.annotation
        candidates = [ann] + list(getattr(ann, "__args__", ()))
        for cand in candidates:
            inner = [cand] + list(getattr(cand, "__args__", ()))
            found = next((c for c in inner if isinstance(c, type) and issubclass(c, Strict)), None)
            if found:
                model = found
                break
        else:
            return None
    return model


def declared(parts: list[str]) -> bool:
    """Whether a key path is a field the schema declares (so `key=value` may set it though the YAML leaves it to
    its default). Free-form mappings (sft.args, grpo.overrides, env, vars) declare nothing below them: a new entry
    there needs `+key=value`, so a typo cannot slip in as a new flag."""
    if not parts:
        return False
    owner = model_at(tuple(parts[:-1]))
    return owner is not None and parts[-1] in owner.model_fields
