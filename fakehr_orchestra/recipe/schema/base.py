"""Shared pieces of the recipe schema: strict models and the `${env:NAME}` deferred-value type."""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import AfterValidator, BaseModel, ConfigDict

from ...refs import is_recipe_env_ref


class Strict(BaseModel):
    """Unknown keys are errors (did-you-mean is added when errors are reported)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _env_ref(value: str) -> str:
    if not is_recipe_env_ref(value):
        raise ValueError("expected a value or a launch-time reference like ${env:WORLD_SIZE}")
    return value


EnvRef = Annotated[str, AfterValidator(_env_ref)]
IntOrEnv = Union[int, EnvRef]
StrOrEnv = str
# Free-form framework options (swift flags, verl overrides, env): checked by `validate` against the installed
# framework, not here, because only the framework knows its own schema.
FreeForm = dict[str, Any]
