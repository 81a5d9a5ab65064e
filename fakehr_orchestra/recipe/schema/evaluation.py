"""Evaluation: which backend answers, on which set, with which generation settings, and how it is scored.

The prompt itself is not here on purpose: inference asks exactly what training taught (`prompt:` section, the model
directory's chat template, the image budget of `vision:`), so there is no second copy to drift.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, field_validator

from .base import Strict
from .data import SourceSection


class EvalSetSection(SourceSection):
    """One test set of a suite: a source in any layout the data stage reads (FakeClue json, GenImage tree, jsonl,
    label-named folders) with its label convention, read by the same importers and image checks (data.check,
    data.max_image_mb; a set losing more than data.max_loss of its images is an error). `split` keeps only the
    records the source puts in that split (GenImage's val folders are its test split); null: every record."""

    split: Optional[Literal["train", "test"]] = Field(  # type: ignore[assignment]
        None, description="keep only this split of the source (GenImage val = test); null: all of it")


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
    sets: list[EvalSetSection] = Field(
        default_factory=list,
        description="a suite of test sets (`eval suite`): every model is answered and scored on each, and the report "
                    "is the matrix models x sets with the mean; names must differ")

    perturbations: list[str] = Field(
        default_factory=list,
        description="`eval suite` robustness columns: each set is answered once per perturbation, applied to the "
                    "image before the model's resize (none | jpeg:QUALITY | downscale:FACTOR | blur:SIGMA); empty: "
                    "the images as they are")

    @field_validator("perturbations")
    @classmethod
    def _known_perturbations(cls, specs: list[str]) -> list[str]:
        from ...evaluation.perturb import parse

        for spec in specs:
            parse(spec)
        if len(set(specs)) != len(specs):
            raise ValueError("eval.perturbations lists one twice")
        return specs

    @field_validator("sets")
    @classmethod
    def _distinct_names(cls, sets: list[EvalSetSection]) -> list[EvalSetSection]:
        names = [s.name for s in sets]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"eval.sets names must differ: {', '.join(twice)} appear more than once")
        bad = [n for n in names if not n or "/" in n or n.startswith(".")]
        if bad:
            raise ValueError(f"eval.sets names become folder names: {bad} cannot be one")
        return sets
