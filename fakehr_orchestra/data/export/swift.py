"""ms-swift rows: {"messages": [...], "images": [abs path]} (SFT: with the assistant target; GRPO: without it and
with `solution`, the label, which ms-swift passes to reward functions as a keyword argument)."""

from __future__ import annotations

from typing import Any, Optional

from ..manifest import Record
from .settings import ExportSettings


def _prompt(settings: ExportSettings, with_system: bool) -> list[dict[str, str]]:
    messages = []
    if with_system and settings.system:
        messages.append({"role": "system", "content": settings.system})
    messages.append({"role": "user", "content": settings.user})
    return messages


def sft_row(rec: Record, settings: ExportSettings, target: str) -> dict[str, Any]:
    messages = _prompt(settings, settings.sft_rows_system) + [{"role": "assistant", "content": target}]
    return {"messages": messages, "images": [rec.path]}


def grpo_row(rec: Record, settings: ExportSettings) -> dict[str, Any]:
    return {"messages": _prompt(settings, settings.grpo_rows_system), "images": [rec.path],
            "solution": rec.label}


def parquet_prompt(settings: ExportSettings) -> list[dict[str, str]]:
    """verl has no --system: the parquet prompt always carries the effective system turn."""
    return _prompt(settings, True)


def system_note(settings: ExportSettings) -> Optional[str]:
    if settings.system is None:
        return None
    return "rows carry the system turn" if settings.sft_rows_system else "system comes from ms-swift's --system"
