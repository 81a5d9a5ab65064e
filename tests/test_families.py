"""The model-family table (fakehr_orchestra/families.py) against the installed code it restates: ms-swift 4.6's model
registry and templates, transformers' config defaults, auto classes and processors, qwen-vl-utils' limits."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fakehr_orchestra import families
from fakehr_orchestra.families import FAMILIES
from tests.conftest import ROOT, framework_env, require_module

SWIFT_FACTS = r"""
import json, inspect
from swift.model import MODEL_MAPPING
from swift.model.models import qwen as mq
from swift.template import TEMPLATE_MAPPING
out = {"models": {}, "templates": {}}
for name in %s:
    meta = MODEL_MAPPING[name]
    out["models"][name] = {"templates": meta.candidate_templates, "architectures": meta.architectures,
                           "loader": meta.loader.__name__,
                           "patch": inspect.getsource(meta.loader._check_qwen_vl_utils)}
for name in %s:
    meta = TEMPLATE_MAPPING[name]
    cls = meta.template_cls
    out["templates"][name] = {"image_token_id": cls.image_token_id, "video_token_id": cls.video_token_id,
                              "version": cls.version, "thinking_prefix": getattr(meta, "thinking_prefix", None),
                              "default_system": meta.default_system}
out["compat"] = inspect.getsource(mq.compat_qwen_vl_utils)
print("RESULT" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def swift_facts() -> dict:
    require_module("swift")
    models = sorted({f.swift_model_type for f in FAMILIES.values()})
    templates = sorted({f.swift_template for f in FAMILIES.values()})
    proc = subprocess.run([sys.executable, "-c", SWIFT_FACTS % (models, templates)], cwd=ROOT, env=framework_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.split("RESULT", 1)[1])


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_ms_swift_registers_the_family_as_the_table_says(swift_facts: dict, name: str) -> None:
    fam = FAMILIES[name]
    meta = swift_facts["models"][fam.swift_model_type]
    assert meta["templates"][0] == fam.swift_template  # the template ms-swift picks by default
    assert list(fam.architectures) == meta["architectures"]
    tpl = swift_facts["templates"][fam.swift_template]
    assert tpl["image_token_id"] == fam.special_tokens["<|image_pad|>"]
    assert tpl["video_token_id"] == fam.special_tokens["<|video_pad|>"]
    # the image patch size ms-swift hands qwen-vl-utils (compat_qwen_vl_utils) is the family's patch size
    assert f"image_patch_size={fam.patch_size}" in meta["patch"]
    if fam.patch_size != 14:  # the v3 template passes the processor's patch size to fetch_image (default 14)
        assert tpl["version"] == "v3"
    assert tpl["thinking_prefix"] == fam.thinking_prefix or fam.thinking_prefix is None


def test_ms_swift_floors_min_pixels_to_whole_tokens(swift_facts: dict) -> None:
    src = swift_facts["compat"]  # what vision.swift_min_pixels restates
    assert "'MIN_PIXELS': 'IMAGE_MIN_TOKEN_NUM'" in src and "int(value) // image_factor**2" in src


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_transformers_config_and_processor_defaults(name: str) -> None:
    require_module("transformers")
    import transformers
    from transformers import AutoConfig
    from transformers.models.auto.image_processing_auto import IMAGE_PROCESSOR_MAPPING_NAMES
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

    fam = FAMILIES[name]
    cfg = AutoConfig.for_model(name)
    assert cfg.model_type == name
    assert cfg.vision_config.patch_size == fam.patch_size
    assert cfg.vision_config.spatial_merge_size == fam.merge_size
    assert cfg.vision_config.temporal_patch_size == fam.temporal_patch_size
    for attr, token in (("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
                        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>")):
        assert getattr(cfg, attr) == fam.special_tokens[token], attr
    assert PROCESSOR_MAPPING_NAMES[name] == fam.processor_class
    image_proc = IMAGE_PROCESSOR_MAPPING_NAMES.get(name)
    if image_proc is not None:  # qwen3_vl_moe has no entry of its own: its processor config names the class
        names = image_proc.values() if isinstance(image_proc, dict) else [image_proc]
        assert fam.image_processor_class in names
    assert hasattr(transformers, fam.model_class)


def test_qwen_vl_utils_limits() -> None:
    require_module("qwen_vl_utils")
    from qwen_vl_utils import vision_process

    assert (vision_process.IMAGE_MIN_TOKEN_NUM, vision_process.IMAGE_MAX_TOKEN_NUM) == \
        (families.MIN_TOKENS, families.MAX_TOKENS)
    assert vision_process.SPATIAL_MERGE_SIZE == FAMILIES["qwen3_vl"].merge_size


def test_family_from_config_and_errors(tmp_path) -> None:
    assert families.from_config({"model_type": "qwen3_vl_moe"}).swift_model_type == "qwen3_vl_moe"
    assert families.from_config({"architectures": ["Qwen3VLForConditionalGeneration"]}).name == "qwen3_vl"
    with pytest.raises(families.FamilyError, match="not a model family"):
        families.from_config({"model_type": "llava"})
    with pytest.raises(families.FamilyError, match="did you mean 'qwen3_vl'"):
        families.get("qwen3vl")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    assert families.on_disk(str(tmp_path)).factor == 28
    assert families.on_disk(str(tmp_path / "absent")) is None
    assert FAMILIES["qwen3_vl"].factor == 32 and FAMILIES["qwen3_vl"].max_pixels == 16384 * 32 * 32
