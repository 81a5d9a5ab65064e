"""Validate recipe data against the schema; pydantic's errors come back as Problems with file:line and did-you-mean."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ..errors import Problem, RecipeError, closest
from ..yaml_source import Positions, dotted, locate
from .recipe import RecipeModel, model_at


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
                owner = model_at(loc[:-1])
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
