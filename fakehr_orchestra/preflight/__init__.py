"""Preflight: check a recipe against the INSTALLED ms-swift / verl and against its cluster, data and reward.

`validate()` (validate_recipe.py) never raises for a problem in the recipe: it collects every finding into a Report.
"""

from .report import Finding, Report
from .validate_recipe import STAGES, TRAINING, as_pipeline_run, swift_command, validate

__all__ = ["STAGES", "TRAINING", "Finding", "Report", "as_pipeline_run", "swift_command", "validate"]
