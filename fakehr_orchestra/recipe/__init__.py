"""Recipes: YAML + extends + profiles + overrides, resolved and checked against a strict schema."""

from .errors import Problem, RecipeError
from .load import Recipe, load_recipe

__all__ = ["Problem", "Recipe", "RecipeError", "load_recipe"]
