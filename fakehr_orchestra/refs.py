"""The `${...}` reference forms, in one place.

In a recipe:
  `${a.b}`                 another recipe value (resolved when the recipe loads, recipe/load.py)
  `${env:NAME}`            the environment at launch time (kept through rendering, see below)
  `${shipped:rewards/x.py}` a file shipped with fakehr-orchestra (resolved when the recipe loads to its real path
                           in this installation, fakehr_orchestra/resources.py; for reward plugins and bases)
In a rendered Plan, `${env:NAME}` becomes `${NAME}`, filled from the node's environment at launch (engines/plan.py).
"""

from __future__ import annotations

import re
from typing import Mapping

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
RECIPE_REF = re.compile(r"\$\{([^}]*)\}")  # any reference in a recipe value; group 1 is what is inside
RECIPE_ENV_REF = re.compile(rf"\$\{{env:({_NAME})\}}")  # group 1: the variable
PLAN_REF = re.compile(rf"\$\{{({_NAME})\}}")  # a launch-time reference in a rendered plan; group 1: the variable
ENV_PREFIX = "env:"
SHIPPED_PREFIX = "shipped:"


def is_recipe_env_ref(text: str) -> bool:
    """The whole value is one `${env:NAME}`."""
    return RECIPE_ENV_REF.fullmatch(text) is not None


def fill_plan_refs(text: str, environ: Mapping[str, str]) -> str:
    """`${NAME}` filled from `environ`; names it lacks stay as written."""
    return PLAN_REF.sub(lambda m: environ.get(m.group(1), m.group(0)), text)


def fill_recipe_env_refs(text: str, environ: Mapping[str, str]) -> str:
    """`${env:NAME}` filled from `environ`; names it lacks stay as written."""
    return RECIPE_ENV_REF.sub(lambda m: environ.get(m.group(1), m.group(0)), text)
