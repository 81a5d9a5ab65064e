"""Exports: the validated manifest -> ms-swift SFT / GRPO jsonl, verl parquet, eval jsonl, in one streaming pass.

System prompt (decided here, documented in docs and the recipe comments): verl has no --system, so the parquet
prompt always starts with the effective system turn. For ms-swift jsonl, a row's own `system` turn would silently
win over the `--system` flag, so the rows carry NO system turn when the recipe passes `system` as a flag for that
stage (`sft.args.system` / `grpo.swift_args.system`, which must then equal `prompt.system`), and carry the
effective system turn when it does not. Either way ms-swift trains on exactly `prompt.system`.
"""

from __future__ import annotations

from .settings import ExportSettings, settings_from_recipe
from .writer import FILES, export_manifest, stage_inputs, wired_inputs

__all__ = ["ExportSettings", "FILES", "settings_from_recipe", "export_manifest", "stage_inputs", "wired_inputs"]
