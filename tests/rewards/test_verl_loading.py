"""verl's own loader (installed verl 0.9) loads our plugins from the config our renderer produces: the rendered
Hydra overrides are composed against verl's ppo_trainer config, then `get_custom_reward_fn`,
`resolve_reward_manager_cls` and `load_reward_manager` run on it and score a batch on CPU, the way a
RewardLoopWorker does (run_single per sample, gathered; then assemble_rm_scores). No GPU, no Ray: the reward loop
worker itself is a Ray actor, and this test calls the same methods in-process."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import ROOT, require_module


def composed(recipe: str, monkeypatch: pytest.MonkeyPatch, *overrides: str) -> Any:
    require_module("verl")
    import verl
    from hydra import compose, initialize_config_dir

    from fakehr_orchestra.engines import render
    from fakehr_orchestra.recipe import load_recipe

    monkeypatch.chdir(ROOT)  # the plan's cwd (recipe workdir "."): plugin paths are relative to it
    model = load_recipe(ROOT / recipe, ["grpo.engine=verl", *overrides], profile="smoke")
    plan = render(model, "grpo").resolve({})
    assert plan.argv[:3] == ["python3", "-m", "verl.trainer.main_ppo"]
    config_dir = str(Path(verl.__file__).parent / "trainer" / "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        return compose(config_name="ppo_trainer", overrides=plan.argv[3:])


def batch(tokenizer: Any, rows: list[tuple[str, str, str, dict]]) -> Any:
    """A DataProto as the reward loop gets it: prompts, responses (right-padded), masks, uid, ground truth."""
    import torch
    from verl import DataProto

    prompt = tokenizer("<|im_start|>user\nIs this image real or fake?<|im_end|>\n<|im_start|>assistant\n")["input_ids"]
    responses = [tokenizer(text + "<|im_end|>")["input_ids"] for _, text, _, _ in rows]
    width = max(map(len, responses))
    pad = tokenizer.pad_token_id
    resp = torch.tensor([r + [pad] * (width - len(r)) for r in responses])
    prompts = torch.tensor([prompt] * len(rows))
    mask = torch.cat([torch.ones_like(prompts), torch.tensor([[1] * len(r) + [0] * (width - len(r))
                                                               for r in responses])], dim=1)
    return DataProto.from_dict(
        tensors={"prompts": prompts, "responses": resp, "attention_mask": mask,
                 "input_ids": torch.cat([prompts, resp], dim=1)},
        non_tensors={"uid": np.array([u for u, _, _, _ in rows], dtype=object),
                     "data_source": np.array(["genimage"] * len(rows), dtype=object),
                     "reward_model": np.array([{"style": "rule", "ground_truth": g} for _, _, g, _ in rows],
                                              dtype=object),
                     "extra_info": np.array([e for _, _, _, e in rows], dtype=object)})


def score_batch(manager: Any, data: Any) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:  # RewardLoopWorker.compute_score_batch
        return list(await asyncio.gather(*(manager.run_single(data[i:i + 1]) for i in range(len(data)))))

    return manager.loop.run_until_complete(run())


NO_THINK = "<think>\n\n</think>\n\n{}"
THINK = "<think>\nthe shadows disagree\n</think>\n\n{}"


def test_fake_hr1_plugin_and_hybrid_manager(tiny: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import AutoTokenizer
    from verl.trainer.ppo.reward import get_custom_reward_fn, load_reward_manager, resolve_reward_manager_cls

    cfg = composed("recipes/fake_hr1.yaml", monkeypatch, "grpo.reward.kwargs.hybrid_group_timeout_s=1")
    assert cfg.reward.reward_manager.source == "importlib" and cfg.actor_rollout_ref.rollout.n == 4

    fn = get_custom_reward_fn(cfg)
    direct = fn(data_source="genimage", solution_str=NO_THINK.format("fake"), ground_truth="fake", extra_info={})
    assert direct["score"] == 1.5 and direct["no_think"] == 1.0

    cls = resolve_reward_manager_cls(cfg)
    assert cls.__name__ == "HybridRewardManager"
    tokenizer = AutoTokenizer.from_pretrained(tiny["model"])
    manager = load_reward_manager(cfg, tokenizer)
    rows = [
        # group a: no-think as accurate as think (1.0 vs 0.5) -> no-think preferred
        ("a", NO_THINK.format("fake"), "fake", {}), ("a", NO_THINK.format("fake"), "fake", {}),
        ("a", THINK.format("fake"), "fake", {}), ("a", THINK.format("real"), "fake", {}),
        # group b: thinking clearly more accurate (1.0 vs 0.0) -> think preferred
        ("b", THINK.format("real"), "real", {}), ("b", THINK.format("real"), "real", {}),
        ("b", NO_THINK.format("fake"), "real", {}), ("b", NO_THINK.format("unrealistic"), "real", {}),
        # group c: only one sample of 4 arrives -> closed by the timeout, no bonus
        ("c", NO_THINK.format("real"), "real", {}),
        # validation sample: never waits
        ("v", NO_THINK.format("real"), "real", {"split": "test"}),
    ]
    data = batch(tokenizer, rows)
    out = score_batch(manager, data)
    bonus = [o["reward_extra_info"]["hybrid_bonus"] for o in out]
    assert bonus == [0.5, 0.5, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0]
    scores = [o["reward_score"] for o in out]
    assert scores == [2.0, 2.0, 1.5, 0.5, 2.0, 2.0, 0.5, 0.0, 1.5, 1.5]
    info = [o["reward_extra_info"] for o in out]
    assert [i["hybrid_preferred"] for i in info[:8]] == [0.0] * 4 + [1.0] * 4
    assert info[8]["hybrid_group_complete"] == 0.0 and info[8]["hybrid_group_size"] == 1.0
    assert info[9]["hybrid_group_complete"] == 1.0
    assert len({frozenset(i) for i in info}) == 1  # same keys on every sample (verl stacks them)
    assert all(math.isfinite(v) for i in info for v in i.values())
    rm = cls.assemble_rm_scores(data, scores)
    assert rm.sum(dim=1).tolist() == pytest.approx(scores)


def test_ms_swift_and_verl_give_identical_hybrid_rewards(tiny: dict[str, str], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The same groups scored by verl's HybridRewardManager and by the ms-swift ORM adapter, each set up from its
    own rendered plan (verl: the composed config; ms-swift: the smoke plan's FAKEHR_REWARD_* env), give the same
    scores and bonuses. ms-swift hands the reward completions without the `<think>\\n` it pre-filled; verl's
    responses are whole (it pre-fills nothing)."""
    require_module("swift")
    from transformers import AutoTokenizer
    from verl.trainer.ppo.reward import load_reward_manager

    from fakehr_orchestra.engines import render
    from fakehr_orchestra.recipe import load_recipe
    from tests.rewards.conftest import load

    cfg = composed("recipes/fake_hr1.yaml", monkeypatch, "grpo.reward.kwargs.hybrid_group_timeout_s=5")
    manager = load_reward_manager(cfg, AutoTokenizer.from_pretrained(tiny["model"]))
    groups = [("a", NO_THINK.format("fake"), "fake"), ("a", NO_THINK.format("fake"), "fake"),
              ("a", THINK.format("fake"), "fake"), ("a", THINK.format("real"), "fake"),
              ("b", THINK.format("real"), "real"), ("b", THINK.format("real"), "real"),
              ("b", NO_THINK.format("fake"), "real"), ("b", NO_THINK.format("unrealistic"), "real"),
              ("c", THINK.format("real"), "real"), ("c", NO_THINK.format("real"), "real"),
              ("c", THINK.format("real"), "real"), ("c", THINK.format("fake"), "real")]
    verl = score_batch(manager, batch(AutoTokenizer.from_pretrained(tiny["model"]),
                                      [(u, text, truth, {}) for u, text, truth in groups]))

    plan = render(load_recipe(ROOT / "recipes/fake_hr1.yaml", [], profile="smoke"), "grpo")
    assert plan.env["FAKEHR_REWARD_GROUPS"].endswith("rewards/hybrid_manager.py")
    assert plan.env["FAKEHR_REWARD_GROUP_SIZE"] == "4"
    for name in ("FAKEHR_REWARD_PATH", "FAKEHR_REWARD_NAME", "FAKEHR_REWARD_KWARGS", "FAKEHR_REWARD_GROUPS",
                 "FAKEHR_REWARD_GROUP_SIZE"):
        monkeypatch.setenv(name, plan.env[name])
    monkeypatch.setenv("FAKEHR_REWARD_ORM", "t_hybrid_groups")
    from swift.rewards import orms

    load("swift_orm")
    orm = orms["t_hybrid_groups"]()
    prefix = "<think>\n"
    completions = [text[len(prefix):] if text.startswith(prefix) else text for _, text, _ in groups]
    images = [[f"{u}.png"] for u, _, _ in groups]
    swift = orm(completions, solution=[t for _, _, t in groups], images=images, trainer_state=None)
    assert swift == [o["reward_score"] for o in verl]
    assert swift == [2.0, 2.0, 1.5, 0.5, 2.0, 2.0, 0.5, 0.0, 1.5, 2.0, 1.5, 0.5]
    with pytest.raises(ValueError, match="whole groups"):
        orm(completions[:6], solution=[t for _, _, t in groups][:6], images=images[:6], trainer_state=None)


def test_verl_prefills_nothing_so_its_reward_puts_nothing_back(tiny: dict[str, str], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The response prefix, decided from verl's own prompt building: the rollout prompt of a row our data stage
    exports, built by RLHFDataset and the agent loop's token builder (verl 0.9), ends with the generation prompt
    and no `<think>`; so the verl plan passes the reward no prefix, and a bare correct answer scores as correct
    (the bug: the reward put a `<think>` back that was never there). The ms-swift plan, whose --response_prefix
    ms-swift pre-fills, passes the same prefix to its reward."""
    import json

    from omegaconf import OmegaConf
    from transformers import AutoProcessor
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.utils.dataset.rl_dataset import RLHFDataset
    from verl.utils.tokenizer.continuous_token_wiring import create_continuous_token_builder

    from fakehr_orchestra.data.stage import prepare
    from fakehr_orchestra.engines import render
    from fakehr_orchestra.recipe import load_recipe

    cfg = composed("recipes/fake_hr1.yaml", monkeypatch)
    assert "response_prefix" not in cfg.reward.custom_reward_function.reward_kwargs
    fn = get_custom_reward_fn(cfg)
    bare = fn(data_source="genimage", solution_str="real", ground_truth="real", extra_info={})
    assert bare["acc"] == 1.0
    model = load_recipe(ROOT / "recipes/fake_hr1.yaml", [f"data.workdir={tmp_path / 'data'}"], profile="smoke")
    swift_kwargs = json.loads(render(model, "grpo").env["FAKEHR_REWARD_KWARGS"])
    assert swift_kwargs["response_prefix"] == "<think>\\n"  # ms-swift pre-fills it (--response_prefix)

    data = prepare(model.model, tmp_path / "data", workers=1)
    processor = AutoProcessor.from_pretrained(tiny["model"])
    ds_cfg = OmegaConf.create({"image_key": "images", "max_prompt_length": 4096, "filter_overlong_prompts": False,
                               "cache_dir": str(tmp_path)})
    ds = RLHFDataset(data_files=[data["parquet"]], tokenizer=processor.tokenizer, processor=processor, config=ds_cfg)
    messages = ds[0]["raw_prompt"]
    images, _ = asyncio.run(RLHFDataset.process_vision_info(messages, image_patch_size=14, config=ds_cfg))
    builder = create_continuous_token_builder(processor.tokenizer, hf_model_type="qwen2_5_vl", processor=processor)
    ids = builder.build_initial_tokens(messages, images=images)
    prompt = processor.tokenizer.decode(ids)
    assert prompt.endswith("<|im_start|>assistant\n") and "<think>" not in prompt.split("assistant")[-1]


def test_fakevlm_r1_plugin_through_verl(tiny: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import inspect

    from transformers import AutoTokenizer
    from verl.trainer.ppo.reward import get_custom_reward_fn, load_reward_manager

    cfg = composed("recipes/fakevlm_r1.yaml", monkeypatch, "grpo.reward.kwargs.length_min_words=2",
                   "critic.mode=off")
    fn = get_custom_reward_fn(cfg)
    assert inspect.iscoroutinefunction(fn.func)  # verl awaits it: critic calls overlap
    manager = load_reward_manager(cfg, AutoTokenizer.from_pretrained(tiny["model"]))
    assert type(manager).__name__ == "NaiveRewardManager"
    good = "<think>\n[Why fake] warped text\n[If real] motion blur\n</think>\n<answer>Fake</answer>"
    rows = [("a", good, "fake", {}), ("a", good.replace("Fake</answer>", "Real</answer>"), "fake", {}),
            ("a", "<think>[Why fake] x</think><answer>Fake</answer>", "fake", {}), ("a", "", "fake", {})]
    out = score_batch(manager, batch(AutoTokenizer.from_pretrained(tiny["model"]), rows))
    scores = [o["reward_score"] for o in out]
    assert scores[0] == pytest.approx(1.0)  # no critic configured: consistency dropped, renormalised
    assert scores[0] > scores[2] > scores[3] and scores[0] > scores[1]
    assert "consistency" not in out[0]["reward_extra_info"]
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_critic_settings_reach_every_verl_reward_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """The critic's URL and client settings (recipe `critic:` section) compose into verl's reward_kwargs, which verl
    merges into every compute_score call in whichever reward worker (Ray node) runs it."""
    from verl.trainer.ppo.reward import get_custom_reward_fn

    cfg = composed("recipes/fakevlm_r1.yaml", monkeypatch, "critic.server.port=8123")
    kwargs = cfg.reward.custom_reward_function.reward_kwargs
    assert kwargs.critic_base_url == "http://127.0.0.1:8123/v1"  # Hydra keeps the URL intact
    assert (kwargs.critic_model, kwargs.critic_concurrency, kwargs.critic_max_tokens) == ("tiny-critic", 4, 8)
    fn = get_custom_reward_fn(cfg)
    assert fn.args[1]["critic_base_url"] == "http://127.0.0.1:8123/v1"  # bound into the function verl calls
