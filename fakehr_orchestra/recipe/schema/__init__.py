"""The recipe schema, one strict pydantic model per section; errors come back as Problems with did-you-mean."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field, ValidationError

from ..errors import Problem, RecipeError, closest
from ..yaml_source import Positions, dotted
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
    name: str
    method: Literal["fake_hr1", "fakevlm_r1"]
    description: Optional[str] = None
    workdir: str = "."
    vars: dict[str, Any] = Field(default_factory=dict)  # free values for ${vars.x} references
    written_for: WrittenFor = Field(default_factory=WrittenFor)
    cluster: ClusterSection = Field(default_factory=ClusterSection)
    prompt: PromptSection = Field(default_factory=PromptSection)
    vision: VisionSection = Field(default_factory=VisionSection)  # the image budget, for every stage
    data: DataSection = Field(default_factory=DataSection)
    sft: Optional[SftSection] = None
    grpo: Optional[GrpoSection] = None
    critic: CriticSection = Field(default_factory=CriticSection)  # FakeVLM-R1's judge (off by default)
    eval: EvalSection = Field(default_factory=EvalSection)


def _model_at(path: tuple[Any, ...]) -> type[Strict] | None:
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
    owner = _model_at(tuple(parts[:-1]))
    return owner is not None and parts[-1] in owner.model_fields


def _existing_prefix(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Pydantic adds union-branch names to error locations; keep only the part that is a real key path."""
    out: list[Any] = []
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            break
        out.append(part)
    return tuple(out)


def validate_model(data: dict[str, Any], positions: Positions, file: str) -> RecipeModel:
    from ..load import locate

    try:
        return RecipeModel.model_validate(data)
    except ValidationError as exc:
        problems: dict[str, Problem] = {}
        for err in exc.errors():
            loc = tuple(err["loc"])
            if err["type"] not in ("missing", "extra_forbidden"):
                loc = _existing_prefix(data, loc)
            key = dotted(loc)
            where_file, line = locate(positions, key, file)
            hint = None
            if err["type"] == "extra_forbidden":
                owner = _model_at(loc[:-1])
                if owner is not None:
                    match = closest(str(loc[-1]), owner.model_fields)
                    hint = f"did you mean '{dotted(loc[:-1] + (match,))}'?" if match else \
                        f"allowed here: {', '.join(owner.model_fields)}"
                message = "unknown key"
            elif err["type"] == "missing":
                message = "required key is missing"
            else:
                got = err.get("input")
                message = err["msg"] if isinstance(got, (dict, list)) or err["type"] in ("secret_value", "env_name") \
                    else f"{err['msg']} (got {got!r})"
            if key in problems and err["type"] not in ("missing", "extra_forbidden"):
                # one value failing every branch of a union: say so once
                prev = problems[key]
                problems[key] = Problem(key, f"{prev.message.split(' (got')[0]}; or {message}",
                                        file=where_file, line=line, hint=prev.hint)
                continue
            problems[key] = Problem(key, message, file=where_file, line=line, hint=hint)
        raise RecipeError(list(problems.values())) from None


__all__ = ["RecipeModel", "declared", "validate_model"]
