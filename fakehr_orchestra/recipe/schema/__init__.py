"""The recipe schema, one strict pydantic model per section (cluster.py, data.py, stages.py, ...), the whole recipe
(recipe.py) and its validation into Problems with did-you-mean (check.py)."""

from .check import validate_model
from .recipe import RecipeModel, declared, model_at

__all__ = ["RecipeModel", "declared", "model_at", "validate_model"]
