"""Recipes for estimate tests, written as YAML and loaded the way the CLI loads them (strict schema included)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fakehr_orchestra.recipe import load_recipe


def recipe(tmp_path: Path, *, model: str = "Qwen2.5-VL-7B-Instruct", nodes: Any = 1, gpus_per_node: Any = 8,
           sft_args: dict[str, Any] | None = None, grpo: dict[str, Any] | None = None, user: str | None = None,
           gpu: str | None = None, name: str = "r.yaml") -> Any:
    data: dict[str, Any] = {
        "name": "t", "method": "fake_hr1",
        "cluster": {"nodes": nodes, "gpus_per_node": gpus_per_node, "gpu": gpu},
        "prompt": {"system": None, "user": user or "<image>Is this image real or fake?"},
    }
    if sft_args is not None:
        sft_args = dict(sft_args)
        if "max_pixels" in sft_args:  # the image budget lives in vision: (one budget for every stage)
            data["vision"] = {"max_pixels": sft_args.pop("max_pixels")}
        data["sft"] = {"model": model, "dataset": ["missing.jsonl"], "output_dir": "out", "args": sft_args}
    if grpo is not None:
        data["grpo"] = {"engine": "verl", "model": model, "train_files": ["missing.parquet"], "output_dir": "out",
                        "reward": {"path": "rewards/fake_hr1.py"}, "overrides": grpo}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_recipe(str(path), (), None)
