"""The cached ms-swift flag table behaves exactly like ms-swift's own parser (HfArgumentParser over SftArguments /
RLHFArguments of the installed ms-swift), on good and bad flags alike."""

from __future__ import annotations

import pytest

from tests.conftest import require_module

pytestmark = pytest.mark.integration

ARGVS = [
    ["--tuner_type", "full", "--torch_dtype", "bfloat16", "--max_length", "8192", "--freeze_vit", "false",
     "--dataset", "a.jsonl", "b.jsonl", "--deepspeed", "zero2", "--learning_rate", "1e-6", "--report_to", "none"],
    ["--train_type", "full", "--learning_rat", "1", "--torch_dtype", "bf17", "--max_length", "abc",
     "--freeze_vit", "maybe", "--attn_impl", "sdpa", "--gradient_checkpointing", "--num_train_epochs", "1", "2"],
    ["--rlhf_type", "grpo", "--rlhf_type", "dpo2", "--num_generations", "4", "--reward_funcs", "a", "b",
     "--max_completion_length", "x16", "--use_vllm", "true"],
]


@pytest.mark.parametrize("command", ["sft", "rlhf"])
@pytest.mark.parametrize("argv", ARGVS, ids=["good", "bad", "rlhf"])
def test_cached_table_matches_live_parser(command, argv, monkeypatch, tmp_path):
    require_module("swift")
    from fakehr_orchestra.engines.versions import installed_version
    from fakehr_orchestra.preflight import swift_flags as sf

    version = installed_version("swift")
    monkeypatch.setenv(sf.CACHE_ENV, "0")
    sf.cached.cache_clear()
    live = sf.analyse(command, version, argv)
    monkeypatch.setenv(sf.CACHE_ENV, str(tmp_path))
    sf.cached.cache_clear()
    sf.build_cache(command, version)
    assert sf.cached(command, version) is not None
    table = sf.analyse(command, version, argv)
    sf.cached.cache_clear()
    assert table == live
    assert any(r["status"] != "ok" for r in live) == (argv is not ARGVS[0])  # the test can fail


def test_fingerprint_changes_with_the_installed_files(monkeypatch, tmp_path):
    """A different ms-swift (version or edited argument files) never reuses a stale table."""
    require_module("swift")
    from fakehr_orchestra.preflight import swift_flags as sf
    assert sf.fingerprint("4.6.0") != sf.fingerprint("4.7.0")
