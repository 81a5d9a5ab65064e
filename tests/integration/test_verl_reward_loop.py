"""verl's reward loop for real on CPU, on what the data stage writes: verl's own `RewardLoopManager` (what main_ppo's
trainer calls each step: `compute_rm_score`) starts its `RewardLoopWorker` Ray actors, which load our reward function
(rewards/fake_hr1.py) and the hybrid manager (rewards/hybrid_manager.py) from the rendered plan's composed config,
and score rows of the data stage's verl parquet, each with a group of rollout.n responses: the data stage's own SFT
target for that image (the answer-format text a trained policy writes) and the other kinds a policy gives (the wrong
verdict, reasoning, an unparseable answer). The ms-swift adapter (rewards/swift_orm.py, set up from the ms-swift
plan's FAKEHR_REWARD_* env) scores the same samples from the ms-swift export (grpo.jsonl): the scores are equal.

Only the rollout is not verl's (its vLLM/SGLang servers need a GPU): the responses are given, tokenized as verl's
agent loop hands them to the reward loop (rehearsal/verl_child.data_proto)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import RECIPES, ROOT, require_module
from tests.rewards.test_hybrid_ray_store import ray_instance  # noqa: F401 - a private local Ray, torn down after
from tests.rewards.test_verl_loading import composed

pytestmark = pytest.mark.integration
ROWS = 4  # prompts; x rollout.n responses each


def test_verls_reward_loop_manager_scores_data_stage_rows_as_the_ms_swift_adapter(
        tiny: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        ray_instance: str) -> None:  # noqa: F811
    require_module("verl")
    require_module("swift")
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer
    from verl.experimental.reward_loop.reward_loop import RewardLoopManager

    from fakehr_orchestra.data.stage import prepare
    from fakehr_orchestra.engines import render
    from fakehr_orchestra.recipe import load_recipe
    from fakehr_orchestra.rehearsal.standins import answer
    from fakehr_orchestra.rehearsal.verl_child import data_proto
    from tests.rewards.conftest import load

    model = load_recipe(RECIPES / "fake_hr1.yaml", [f"data.workdir={tmp_path / 'data'}"], profile="smoke")
    data = prepare(model.model, tmp_path / "data", workers=1)
    targets = {json.loads(line)["images"][0]: json.loads(line)["messages"][-1]["content"]
               for line in Path(data["sft"]).read_text().splitlines()}
    swift_rows = {json.loads(line)["images"][0]: json.loads(line)
                  for line in Path(data["grpo"]).read_text().splitlines()}
    parquet = pq.read_table(data["parquet"]).to_pylist()
    # both labels among the prompts, and reasoned targets (FakeClue's explanations) as well as bare ones
    picked = [r for r in parquet if r["data_source"] == "genimage"][:ROWS // 2] + \
        [r for r in parquet if r["data_source"] == "fakeclue"][:ROWS // 2]
    assert {r["reward_model"]["ground_truth"] for r in picked} == {"real", "fake"}

    cfg = composed("recipes/fake_hr1.yaml", monkeypatch, "grpo.reward.kwargs.hybrid_group_timeout_s=30")
    n = int(cfg.actor_rollout_ref.rollout.n)
    # Ray worker processes need not share the test's cwd: the plan's relative paths made absolute
    cfg.actor_rollout_ref.model.path = tiny["model"]
    cfg.reward.custom_reward_function.path = str(ROOT / cfg.reward.custom_reward_function.path)
    cfg.reward.reward_manager.module.path = str(ROOT / cfg.reward.reward_manager.module.path)
    cfg.reward.num_workers = 2  # verl's default is 8 actors; 2 keep this machine's cores, and still share groups

    samples = []  # (verl row, image, response)
    for i, row in enumerate(picked):
        image = row["images"][0]["image"]
        truth = row["reward_model"]["ground_truth"]
        responses = [targets[image], answer("wrong", truth, "fake_hr1"), answer("correct_reasoned", truth, "fake_hr1"),
                     answer("unparseable", truth, "fake_hr1")][:n]
        for response in responses:
            samples.append(({"uid": f"prompt-{i}", "data_source": row["data_source"],
                             "reward_model": dict(row["reward_model"]), "extra_info": dict(row["extra_info"]),
                             "response": response}, image))
    assert len(samples) == ROWS * n

    manager = RewardLoopManager(cfg)
    assert manager.reward_manager_cls.__name__ == "HybridRewardManager" and len(manager.reward_loop_workers) == 2
    tokenizer = AutoTokenizer.from_pretrained(tiny["model"])
    out = manager.compute_rm_score(data_proto(tokenizer, [row for row, _ in samples]))
    verl_scores = out.batch["rm_scores"].sum(dim=1).tolist()
    assert "hybrid_bonus" in out.meta_info["reward_extra_keys"]

    plan = render(load_recipe(RECIPES / "fake_hr1.yaml", [], profile="smoke"), "grpo")
    assert plan.engine == "swift"
    for name in ("FAKEHR_REWARD_PATH", "FAKEHR_REWARD_NAME", "FAKEHR_REWARD_KWARGS", "FAKEHR_REWARD_GROUPS",
                 "FAKEHR_REWARD_GROUP_SIZE"):
        monkeypatch.setenv(name, plan.env[name])
    monkeypatch.setenv("FAKEHR_REWARD_ORM", "t_verl_reward_loop")
    from swift.rewards import orms

    load("swift_orm")
    orm = orms["t_verl_reward_loop"]()
    prefix = json.loads(plan.env["FAKEHR_REWARD_KWARGS"])["response_prefix"]  # ms-swift pre-fills it
    completions = [r["response"][len(prefix):] if r["response"].startswith(prefix) else r["response"]
                   for r, _ in samples]
    swift_scores = orm(completions, solution=[swift_rows[image]["solution"] for _, image in samples],
                       images=[swift_rows[image]["images"] for _, image in samples],
                       messages=[swift_rows[image]["messages"] for _, image in samples], trainer_state=None)
    assert swift_scores == pytest.approx(verl_scores, abs=1e-6)
    # not vacuous: per group, the data stage's own target and the reasoned answer beat the wrong and the unparseable
    for g in range(ROWS):
        target, wrong, reasoned, unparseable = verl_scores[g * n:(g + 1) * n]
        assert min(target, reasoned) > max(wrong, unparseable), verl_scores[g * n:(g + 1) * n]
    assert len(set(verl_scores)) > 2
