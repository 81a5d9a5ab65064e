"""Rehearsals: the frameworks' own start-up code run on CPU before anything is queued (see rehearse.py)."""

from .protocol import StepResult
from .rehearse import rehearse

__all__ = ["StepResult", "rehearse"]
