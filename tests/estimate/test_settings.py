"""Reading a recipe for the estimate: both flag spellings, the installed frameworks' defaults (checked against
their code), launch-time values with stated stand-ins, and a model that is only on disk."""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from fakehr_orchestra.estimate.memory_grpo import GrpoSettings
from fakehr_orchestra.estimate.memory_sft import SftSettings
from fakehr_orchestra.estimate.settings import Options, read_grpo, read_sft
from fakehr_orchestra.recipe import load_recipe
from tests.conftest import RECIPES
from tests.estimate.helpers import recipe


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)  # locates the package without importing it
    return Path(list(spec.submodule_search_locations)[0]) if spec else None


def _class_defaults(path: Path, cls: str) -> dict[str, object]:
    tree = ast.parse(path.read_text())
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == cls)
    out = {}
    for item in node.body:
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and item.value is not None:
            try:
                out[item.target.id] = ast.literal_eval(item.value)
            except ValueError:
                pass
    return out


def test_ms_swift_defaults_match_the_installed_code():
    swift = _package_dir("swift")
    if swift is None:
        pytest.skip("ms-swift is not installed")
    tuner = _class_defaults(swift / "arguments" / "tuner_args.py", "TunerArguments")
    train = _class_defaults(swift / "trainers" / "arguments.py", "TrainArgumentsMixin")
    base = _class_defaults(swift / "arguments" / "base_args" / "base_args.py", "BaseArguments")
    d = SftSettings()
    assert (d.freeze_llm, d.freeze_vit, d.freeze_aligner) == (tuner["freeze_llm"], tuner["freeze_vit"],
                                                              tuner["freeze_aligner"])
    assert (d.lora_rank, d.lora_dropout) == (tuner["lora_rank"], tuner["lora_dropout"])
    assert d.gradient_checkpointing == train["gradient_checkpointing"]
    assert d.batch == train["per_device_train_batch_size"]
    assert "tuner_type: str = field(default='lora'" in (swift / "arguments/base_args/base_args.py").read_text()
    assert base.get("tuner_type", "lora") == d.tuner
    assert "math.ceil(16 / self.per_device_train_batch_size / world_size)" in \
        (swift / "trainers" / "arguments.py").read_text()


def test_verl_defaults_match_the_installed_generated_config():
    verl = _package_dir("verl")
    if verl is None:
        pytest.skip("verl is not installed")
    cfg = yaml.safe_load((verl / "trainer" / "config" / "_generated_ppo_trainer.yaml").read_text())
    arr = cfg["actor_rollout_ref"]
    d = GrpoSettings()
    assert d.train_batch_size == cfg["data"]["train_batch_size"]
    assert (d.max_prompt, d.max_response) == (cfg["data"]["max_prompt_length"], cfg["data"]["max_response_length"])
    assert d.n == arr["rollout"]["n"] and d.tp == arr["rollout"]["tensor_model_parallel_size"]
    assert d.gpu_memory_utilization == arr["rollout"]["gpu_memory_utilization"]
    assert d.free_cache_engine == arr["rollout"]["free_cache_engine"]
    assert d.max_num_batched_tokens == arr["rollout"]["max_num_batched_tokens"]
    assert d.max_num_seqs == arr["rollout"]["max_num_seqs"]
    assert d.ppo_mini_batch_size == arr["actor"]["ppo_mini_batch_size"]
    assert d.ppo_max_token_len_per_gpu == arr["actor"]["ppo_max_token_len_per_gpu"]
    assert d.param_offload == arr["actor"]["fsdp_config"]["param_offload"]
    assert d.gradient_checkpointing == arr["model"]["enable_gradient_checkpointing"]
    assert d.use_fused_kernels == arr["model"]["use_fused_kernels"]
    assert arr["actor"]["fsdp_config"]["model_dtype"] == "fp32" and d.model_dtype_bytes == 4
    assert arr["ref"]["fsdp_config"]["forward_only"] is True  # the reference is CPU-offloaded whatever param_offload
    assert cfg["trainer"]["total_epochs"] == 30


def test_fake_hr1_reads_swift3_spelling_and_states_its_stand_ins():
    rec = load_recipe(str(RECIPES / "fake_hr1.yaml"), (), None)
    sft = read_sft(rec, Options())
    s = sft.settings
    assert s.tuner == "full" and s.world == 16 and s.deepspeed.stage == 2 and s.max_length == 8192
    assert (s.freeze_vit, s.freeze_aligner, s.gradient_checkpointing) == (False, False, True)
    assert any("cluster.nodes is ${env:WORLD_SIZE}" in a for a in sft.assumptions)
    assert s.response_tokens == 2048 and any("data.max_response_length" in a for a in sft.assumptions)
    grpo = read_grpo(rec, Options())
    g = grpo.settings
    assert (g.world, g.tp, g.n, g.gpu_memory_utilization, g.free_cache_engine) == (16, 8, 8, 0.6, False)
    assert any("grpo.model (${env:model_path})" in a for a in grpo.assumptions)
    assert read_sft(rec, Options(nodes=4)).settings.world == 64


def test_launch_time_override_is_named_with_its_stand_in(tmp_path):
    rec = recipe(tmp_path, grpo={"data.train_batch_size": "${env:BATCH}", "trainer.nnodes": 1,
                                 "trainer.n_gpus_per_node": 8})
    g = read_grpo(rec, Options())
    assert g.settings.train_batch_size == GrpoSettings().train_batch_size
    assert any("${env:BATCH}" in a and "default 1024" in a for a in g.assumptions)


def test_defaults_are_said_when_the_recipe_leaves_them_out(tmp_path):
    r = read_sft(recipe(tmp_path, sft_args={}), Options())
    text = "\n".join(r.assumptions)
    for phrase in ("tuner_type not set", "max_pixels not set", "torch_dtype not set", "attn_impl not set",
                   "max_length not set"):
        assert phrase in text
    assert r.settings.tuner == "lora" and r.settings.freeze_vit


def test_deepspeed_json_and_model_on_disk(tmp_path, tiny):
    (tmp_path / "ds.json").write_text(json.dumps({"zero_optimization": {
        "stage": 3, "offload_optimizer": {"device": "cpu"}, "offload_param": {"device": "none"}}}))
    rec = recipe(tmp_path, model=tiny["model"], sft_args={"deepspeed": str(tmp_path / "ds.json")})
    r = read_sft(rec, Options())
    assert (r.settings.deepspeed.stage, r.settings.deepspeed.offload_optimizer,
            r.settings.deepspeed.offload_params) == (3, True, False)
    assert r.spec.source.endswith("config.json") and r.settings.dtype_bytes == 4  # the fixture is float32
