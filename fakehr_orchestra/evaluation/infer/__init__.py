"""Batch inference over an eval set, written incrementally and resumable (run.py); backends in their own modules."""

from .run import InferSummary, ResumeError, make_backend, meta_path, prediction_row, run_inference
from .settings import InferSettings, SettingsError, drift_notes, from_recipe

__all__ = ["InferSettings", "InferSummary", "ResumeError", "SettingsError", "drift_notes", "from_recipe",
           "make_backend", "meta_path", "prediction_row", "run_inference"]
