"""Shared pieces of the recipe schema: strict models and the `${env:NAME}` deferred-value type."""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import AfterValidator, BaseModel, ConfigDict

from ...refs import is_recipe_env_ref


class Strict(BaseModel):
    """Unknown keys are errors (did-you-mean is added when errors are reported); a float is finite (.inf and .nan
    are refused: no recipe number means them, and `data.max_image_mb: .inf` failed only later, in arithmetic)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


def _env_ref(value: str) -> str:
    if not is_recipe_env_ref(value):
        raise ValueError("expected a value or a launch-time reference like ${env:WORLD_SIZE}")
    return value


EnvRef = Annotated[str, AfterValidator(_env_ref)]


def _env_name(value: str) -> str:
    from pydantic_core import PydanticCustomError

    from ...secrets import env_name_problem, looks_like_secret

    problem = env_name_problem(value)
    if problem is not None:
        # a secret is described, never echoed: the "secret_value" type tells the error report not to add the input
        raise PydanticCustomError("secret_value" if looks_like_secret(value) else "env_name", problem)
    return value


# An environment variable name (`env:` keys, critic.api_key_env): a shell identifier, never a secret.
EnvName = Annotated[str, AfterValidator(_env_name)]
EnvMap = dict[EnvName, Any]
IntOrEnv = Union[int, EnvRef]
StrOrEnv = str
# Free-form framework options (swift flags, verl overrides, env): checked by `validate` against the installed
# framework, not here, because only the framework knows its own schema.
FreeForm = dict[str, Any]
