"""The training stages: SFT (ms-swift), GRPO (verl, or ms-swift's own GRPO where verl's GPU workers cannot run)."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field, field_validator

from .base import EnvMap, EnvName, FreeForm, Strict


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
    args: FreeForm = Field(default_factory=dict)  # every other `swift sft --flag value`, as the flag is spelt

    _budget = field_validator("args", "env")(classmethod(lambda cls, v: _no_image_budget(v)))


class RewardManagerSection(Strict):
    name: Optional[str] = None  # a registered manager (naive, dapo, ...) or the class name in `path`
    path: Optional[str] = None  # a file with a custom manager class, loaded by verl through importlib


class RewardSection(Strict):
    path: str  # the reward plugin file (verl's custom_reward_function.path)
    name: str = "compute_score"
    kwargs: dict[str, Any] = Field(default_factory=dict)  # reach compute_score as keyword arguments
    manager: Optional[RewardManagerSection] = None
    swift_orm: Optional[str] = None  # name of the ms-swift ORM the adapter registers (swift GRPO engine)

    @field_validator("kwargs")
    @classmethod
    def _critic_lives_elsewhere(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        # one place says where the critic is: the `critic:` section, which the pipeline hands to the reward
        moved = sorted(k for k in kwargs if k.startswith("critic_"))
        if moved:
            raise ValueError(f"{', '.join(moved)}: the critic is configured in the recipe's top-level `critic:` "
                             "section (mode, url, served_model_name, api_key_env, timeout_s, concurrency, retries, "
                             "fallback_score, server), which the pipeline passes to the reward; move them there")
        return kwargs


class GrpoSection(Strict):
    engine: Literal["verl", "swift"] = "verl"
    model: str  # actor_rollout_ref.model.path
    train_files: list[str] | str  # data.train_files
    # data.val_files: verl builds a validation set from it whatever trainer.test_freq says (its default is an example
    # path, ~/data/rlhf/gsm8k/test.parquet); the pipeline passes the data stage's grpo_val.parquet. ms-swift: unused.
    val_files: Optional[list[str] | str] = None
    output_dir: str  # trainer.default_local_dir
    env: EnvMap = Field(default_factory=dict)
    overrides: FreeForm = Field(default_factory=dict)  # verl Hydra overrides, `key: value`
    reward: RewardSection
    swift_args: FreeForm = Field(default_factory=dict)  # `swift rlhf --rlhf_type grpo` flags (engine: swift)

    _budget = field_validator("swift_args", "env")(classmethod(lambda cls, v: _no_image_budget(v)))
