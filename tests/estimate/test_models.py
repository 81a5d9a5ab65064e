"""Model sizes: the known-model table against the released checkpoints' published parameter counts, config.json
reading against a real checkpoint on disk, and (integration) the arithmetic against what the installed transformers
builds, module by module."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from fakehr_orchestra.estimate.models import KNOWN, ModelError, from_config, lookup, resolve
from tests.conftest import require_module


@pytest.mark.parametrize("name", [k for k, v in KNOWN.items() if v.published_total])
def test_table_totals_equal_the_published_counts(name):
    """Each published total is the Hub's safetensors.total for the checkpoint, quoted with where it is restated
    (KNOWN[...].published_source). Exact equality: the hyper-parameters and the counting are both right."""
    spec = KNOWN[name]
    assert spec.params().total == spec.published_total, spec.published_source


def test_published_parts_of_qwen25_vl_7b():
    """MTEB's metadata for a Qwen2.5-VL-7B derivative: n_embedding_parameters=544997376 (embed_tokens alone);
    a user's count of the `visual` module of Qwen2.5-VL-7B-Instruct: 676550144 (ViT + merger)."""
    p = KNOWN["qwen2.5-vl-7b-instruct"].params()
    assert p.embeddings == 2 * 544_997_376  # untied: embed_tokens + lm_head
    assert p.vision + p.aligner == 676_550_144


def _safetensors_numel(model_dir: Path) -> int:
    total = 0
    for f in model_dir.glob("*.safetensors"):
        with f.open("rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        for key, meta in header.items():
            if key != "__metadata__":
                size = 1
                for d in meta["shape"]:
                    size *= d
                total += size
    return total


def test_config_json_on_disk_is_read_and_counts_match_the_checkpoint(tiny):
    """The tiny fixture is a real Qwen2_5_VLConfig checkpoint: sizes come from its config.json, and the parameter
    count equals the tensors stored in its safetensors file."""
    spec = resolve(tiny["model"])
    assert spec.source.endswith("config.json") and spec.family == "qwen2_5_vl"
    assert spec.text.hidden == 64 and spec.text.layers == 2 and spec.vision.depth == 2
    assert spec.params().total == _safetensors_numel(Path(tiny["model"]))


@pytest.mark.parametrize("text,expected", [
    ("./Qwen2.5-VL-7B-Instruct", "Qwen2.5-VL-7B-Instruct"), ("Qwen/Qwen2.5-VL-72B-Instruct", "Qwen2.5-VL-72B-Instruct"),
    ("qwen2.5-vl-3b", "Qwen2.5-VL-3B-Instruct"), ("/models/Qwen3-VL-30B-A3B-Instruct/", "Qwen3-VL-30B-A3B-Instruct"),
    ("Qwen3-VL-8B-Thinking", "Qwen3-VL-8B-Instruct"),
])
def test_lookup_by_name_or_path(text, expected):
    assert lookup(text).name == expected


def test_unknown_model_and_foreign_config_are_clear_errors(tmp_path):
    with pytest.raises(ModelError, match="known:"):
        resolve("./my-model", tmp_path)
    with pytest.raises(ModelError, match="model_type 'llama'"):
        from_config({"model_type": "llama"}, "x", "config.json")


def test_qwen3_vl_moe_counts_only_active_experts_for_flops():
    spec = KNOWN["qwen3-vl-30b-a3b-instruct"]
    active = spec.active_llm_params()
    assert 2.5e9 < active < 3.5e9  # "A3B": about 3 B active parameters
    assert spec.params().llm > 29e9


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(KNOWN))
def test_arithmetic_matches_transformers_module_by_module(name):
    """Build each table entry on the meta device with the installed transformers and compare every part."""
    require_module("torch")
    require_module("transformers")
    import torch
    import transformers as tf

    spec = KNOWN[name]
    t, v = spec.text, spec.vision
    if spec.family == "qwen2_5_vl":
        cfg = tf.Qwen2_5_VLConfig(
            text_config=dict(hidden_size=t.hidden, num_hidden_layers=t.layers, num_attention_heads=t.heads,
                             num_key_value_heads=t.kv_heads, intermediate_size=t.intermediate, vocab_size=t.vocab,
                             tie_word_embeddings=t.tie_embeddings),
            vision_config=dict(depth=v.depth, hidden_size=v.hidden, intermediate_size=v.intermediate,
                               num_heads=v.heads, out_hidden_size=v.out_hidden),
            tie_word_embeddings=t.tie_embeddings)
        cls = tf.Qwen2_5_VLForConditionalGeneration
    else:
        tc = dict(hidden_size=t.hidden, num_hidden_layers=t.layers, num_attention_heads=t.heads,
                  num_key_value_heads=t.kv_heads, intermediate_size=t.intermediate, vocab_size=t.vocab,
                  head_dim=t.hd, tie_word_embeddings=t.tie_embeddings)
        vc = dict(depth=v.depth, hidden_size=v.hidden, intermediate_size=v.intermediate, num_heads=v.heads,
                  out_hidden_size=v.out_hidden, patch_size=v.patch, num_position_embeddings=v.position_embeddings,
                  deepstack_visual_indexes=list(range(v.deepstack)))
        if t.experts:
            tc.update(num_experts=t.experts, num_experts_per_tok=t.experts_per_token,
                      moe_intermediate_size=t.moe_intermediate)
            cfg, cls = tf.Qwen3VLMoeConfig(text_config=tc, vision_config=vc, tie_word_embeddings=t.tie_embeddings), \
                tf.Qwen3VLMoeForConditionalGeneration
        else:
            cfg, cls = tf.Qwen3VLConfig(text_config=tc, vision_config=vc, tie_word_embeddings=t.tie_embeddings), \
                tf.Qwen3VLForConditionalGeneration
    with torch.device("meta"):
        model = cls(cfg)
    named = dict(model.named_parameters())
    p = spec.params()
    assert sum(x.numel() for x in named.values()) == p.total
    assert sum(x.numel() for n, x in named.items() if n.startswith("model.visual.") and "merger" not in n) == p.vision
    assert sum(x.numel() for n, x in named.items() if "merger" in n) == p.aligner
    assert max(sum(x.numel() for x in m.parameters(recurse=False)) for m in model.modules()) == p.largest_layer
    layer = model.model.language_model.layers[0]
    assert sum(x.numel() for x in layer.parameters()) == p.decoder_layer
