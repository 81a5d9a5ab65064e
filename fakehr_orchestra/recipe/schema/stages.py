"""The training stages: SFT (ms-swift), GRPO (verl, or ms-swift's own GRPO where verl's GPU workers cannot run)."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field, field_validator

from .base import EnvMap, FreeForm, Strict

IMAGE_BUDGET = ("max_pixels", "min_pixels", "MAX_PIXELS", "MIN_PIXELS")


def _no_image_budget(value: dict[str, Any]) -> dict[str, Any]:
    """The image budget is declared once (vision:), so a stage cannot see images at another resolution."""
    clash = [k for k in value if k in IMAGE_BUDGET]
    if clash:
        raise ValueError(f"{', '.join(clash)}: the image budget is declared once, for every stage: set "
                         f"vision.{clash[0].lower()} instead")
    return value


class SftSection(Strict):
    engine: Literal["swift"] = "swift"
    model: str
    dataset: list[str]
    output_dir: str
    env: EnvMap = Field(default_factory=dict)
    args: FreeForm = Field(default_factory=dict,
                           description="every other `swift sft --flag value`, as the flag is spelt")

    _budget = field_validator("args", "env")(classmethod(lambda cls, v: _no_image_budget(v)))


class RewardManagerSection(Strict):
    name: Optional[str] = Field(None, description="a registered manager (naive, dapo, ...) or the class name in `path`")
    path: Optional[str] = Field(None,
                                description="a file with a custom manager class, loaded by verl through importlib")


class RewardSection(Strict):
    path: str = Field(description="the reward plugin file (verl's custom_reward_function.path)")
    name: str = "compute_score"
    kwargs: dict[str, Any] = Field(default_factory=dict, description="reach compute_score as keyword arguments")
    manager: Optional[RewardManagerSection] = None
    swift_orm: Optional[str] = Field(None,
                                     description="name of the ms-swift ORM the adapter registers (swift GRPO engine)")

    @field_validator("kwargs")
    @classmethod
    def _critic_lives_elsewhere(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        # one place says where the critic is: the `critic:` section, which the pipeline hands to the reward
        moved = sorted(k for k in kwargs if k.startswith("critic_"))
        if moved:
            raise ValueError(f"{', '.join(moved)}: the critic is configured in the recipe's top-level `critic:` "
                             "section (mode, url, served_model_name, api_key_env, timeout_s, concurrency, retries, "
                             "fallback_score, server), which the pipeline passes to the reward; move them there")
        if "response_prefix" in kwargs:
            # what the reward puts back is what the engine pre-filled, so the engine's plan decides it
            raise ValueError("response_prefix: the plan passes it to the reward from what the engine pre-fills "
                             "(ms-swift: grpo.swift_args.response_prefix; verl's rollout pre-fills nothing); "
                             "remove it from grpo.reward.kwargs")
        return kwargs


class GrpoSection(Strict):
    engine: Literal["verl", "swift"] = "verl"
    model: str = Field(description="actor_rollout_ref.model.path")
    train_files: list[str] | str = Field(description="data.train_files")
    val_files: Optional[list[str] | str] = Field(None,
                                                 description="data.val_files: verl builds a validation set from it "
                                                             "whatever trainer.test_freq says (its default is an "
                                                             "example path, ~/data/rlhf/gsm8k/test.parquet); the "
                                                             "pipeline passes the data stage's grpo_val.parquet. "
                                                             "ms-swift: unused.")
    output_dir: str = Field(description="trainer.default_local_dir")
    env: EnvMap = Field(default_factory=dict)
    overrides: FreeForm = Field(default_factory=dict, description="verl Hydra overrides, `key: value`")
    reward: RewardSection
    swift_args: FreeForm = Field(default_factory=dict,
                                 description="`swift rlhf --rlhf_type grpo` flags (engine: swift)")

    _budget = field_validator("swift_args", "env")(classmethod(lambda cls, v: _no_image_budget(v)))
