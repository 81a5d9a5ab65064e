"""Evaluation: which backend answers, on which set, with which generation settings."""

from __future__ import annotations

from typing import Literal, Optional

from .base import Strict


class EvalSection(Strict):
    backend: Literal["transformers", "vllm"] = "vllm"
    dataset: Optional[str] = None  # eval jsonl {"file_path", "label", ...}; null: the data stage's test export
    output_dir: str = "eval"
    batch_size: int = 8
    max_new_tokens: int = 1024
    temperature: float = 0.0
    top_p: float = 1.0
    tensor_parallel_size: int = 1
    max_pixels: Optional[int] = None  # null: the SFT stage's max_pixels
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
