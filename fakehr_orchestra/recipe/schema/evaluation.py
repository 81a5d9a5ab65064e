"""Evaluation: which backend answers, on which set, with which generation settings, and how it is scored.

The prompt itself is not here on purpose: inference asks exactly what training taught (`prompt:` section, the model
directory's chat template, the image budget of `vision:`), so there is no second copy to drift.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from .base import Strict


class EvalSection(Strict):
    backend: Literal["transformers", "vllm"] = "vllm"
    dataset: Optional[str] = Field(None,
                                   description="eval jsonl {\"file_path\", \"label\", ...}; null: the data stage's test "
                                               "export")
    label_convention: str = Field("text",
                                  description="how the eval jsonl writes labels (fakehr_orchestra.labels conventions)")
    output_dir: str = "eval"
    batch_size: int = Field(8, ge=1)
    max_new_tokens: int = Field(1024, ge=1)
    temperature: float = Field(0.0, ge=0.0, description="0: greedy")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int = Field(0, description="sampling seed (temperature > 0) and bootstrap seed")
    tensor_parallel_size: int = Field(1, ge=1, description="vLLM")
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0,
                                          description="vLLM: share of each GPU (on vLLM's CPU build: of RAM) it takes")
    max_model_len: Optional[int] = Field(None, ge=1, description="vLLM: context it reserves KV cache for; null: the "
                                                                 "model's own maximum")
    enforce_eager: bool = Field(False, description="vLLM: no CUDA graphs / compilation (start-up in seconds; CPU "
                                                   "smoke runs)")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: Optional[str] = Field(None, description="transformers backend: cpu / cuda / cuda:1; null: cluster.device")
    answer_scores: bool = Field(True, description="record P(fake) vs P(real) at the answer position (for AUC)")
    bootstrap_samples: int = Field(1000, ge=0, description="resamples for accuracy confidence intervals (0: none)")
    confidence: float = Field(0.95, gt=0.0, lt=1.0)
