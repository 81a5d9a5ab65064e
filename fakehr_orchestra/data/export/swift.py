"""ms-swift rows: {"messages": [...], "images": [abs path]} (SFT: with the assistant target; GRPO: without it and
with `solution`, the label, which ms-swift passes to reward functions as a keyword argument)."""

from __future__ import annotations

import functools
from typing import Any, Optional

from ..manifest import Record
from .settings import ExportSettings


@functools.lru_cache(maxsize=16)
def _prompt(settings: ExportSettings, with_system: bool) -> list[dict[str, str]]:
    """The prompt turns every row shares: built once, the same list in every row (never mutated)."""
    messages = []
    if with_system and settings.system:
        messages.append({"role": "system", "content": settings.system})
    messages.append({"role": "user", "content": settings.user})
    return messages


def sft_row(rec: Record, settings: ExportSettings, target: str) -> dict[str, Any]:
    messages = _prompt(settings, settings.sft_rows_system) + [{"role": "assistant", "content": target}]
    return {"messages": messages, "images": [rec.path]}


def grpo_row(rec: Record, settings: ExportSettings) -> dict[str, Any]:
    """`data_source` reaches the reward as a kwarg (ms-swift passes a row's other columns on), so the reward trace
    and the training curves can tell the sources apart (easy vs hard images)."""
    return {"messages": _prompt(settings, settings.grpo_rows_system), "images": [rec.path],
            "solution": rec.label, "data_source": rec.source}


def parquet_prompt(settings: ExportSettings) -> list[dict[str, str]]:
    """verl has no --system: the parquet prompt always carries the effective system turn."""
    return _prompt(settings, True)


class RowLines:
    """The ms-swift jsonl lines as bytes, exactly `line_bytes(sft_row(...))` / `line_bytes(grpo_row(...))` (tested),
    built from the row encoded once with placeholder values: per record only the path, target and label are
    encoded. At GenImage scale building and encoding the full rows was a third of the export's time."""

    _HOLES = ("\x00fakehr-a\x00", "\x00fakehr-b\x00", "\x00fakehr-c\x00")

    def __init__(self, settings: ExportSettings) -> None:
        from ..manifest import line_bytes

        self._encode = line_bytes
        a, b, c = self._HOLES
        self._sft = self._parts(line_bytes({"messages": _prompt(settings, settings.sft_rows_system)
                                            + [{"role": "assistant", "content": a}], "images": [b]}), 2)
        self._grpo = self._parts(line_bytes({"messages": _prompt(settings, settings.grpo_rows_system),
                                             "images": [a], "solution": b, "data_source": c}), 3)

    def _parts(self, line: bytes, holes: int) -> list[bytes]:
        """The line cut at its first `holes` placeholders (as encoded, no newline): the constant pieces between."""
        parts = []
        for hole in self._HOLES[:holes]:
            head, line = line.split(self._encode(hole)[:-1])
            parts.append(head)
        return parts + [line]

    def value(self, value: Any) -> bytes:
        """A JSON value as the row encoder writes it (no newline): cache it when it repeats (an SFT target)."""
        return self._encode(value)[:-1]

    def sft(self, path: str, target: bytes) -> bytes:
        head, middle, tail = self._sft
        return head + target + middle + self.value(path) + tail

    def grpo(self, path: str, label: Optional[str], source: str) -> bytes:
        head, middle, middle2, tail = self._grpo
        return head + self.value(path) + middle + self.value(label) + middle2 + self.value(source) + tail
