"""Model sizes for the estimate: from the model's own config.json when it is on disk, else from a table of known models.

Every size is derived from the hyper-parameters (hidden size, layers, heads, kv heads, intermediate size, vocab, vision
depth/width, experts): the parameter counts below restate, module by module, what transformers builds for
Qwen2.5-VL (models/qwen2_5_vl/modeling_qwen2_5_vl.py) and Qwen3-VL / Qwen3-VL-MoE (models/qwen3_vl*/modeling_*.py).
tests/estimate/test_models.py builds each table entry on the meta device with the installed transformers and checks
the counts exactly, and checks the totals against the counts published for the released checkpoints.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Family = Literal["qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe"]  # the keys of fakehr_orchestra/families.FAMILIES


class ModelError(ValueError):
    """The model cannot be sized: not on disk, not a known name, or a config of a family we do not model."""


@dataclass(frozen=True)
class VisionSpec:
    depth: int
    hidden: int
    intermediate: int
    heads: int
    out_hidden: int  # the LLM hidden size the merger projects to
    patch: int = 14
    temporal_patch: int = 2
    merge: int = 2  # spatial merge: merge x merge patches become one visual token
    gated_mlp: bool = True  # Qwen2.5-VL: gate/up/down (SiLU); Qwen3-VL: fc1/fc2 (GELU)
    layer_norm: bool = False  # Qwen3-VL: LayerNorm (weight + bias); Qwen2.5-VL: RMSNorm (weight)
    patch_bias: bool = False  # Qwen3-VL's patch embedding Conv3d has a bias
    position_embeddings: int = 0  # Qwen3-VL: learned position table (num_position_embeddings)
    deepstack: int = 0  # Qwen3-VL: mergers that feed intermediate ViT features to early LLM layers
    full_attention_blocks: int | None = None  # Qwen2.5-VL: windowed except fullatt_block_indexes; None: all full


@dataclass(frozen=True)
class TextSpec:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    head_dim: int | None = None  # None: hidden // heads
    tie_embeddings: bool = False
    qkv_bias: bool = True  # Qwen2.5: q/k/v have a bias; Qwen3: none
    qk_norm: bool = False  # Qwen3: RMSNorm over the head dim of q and k
    experts: int = 0  # MoE: routed experts per layer (0: dense)
    experts_per_token: int = 0
    moe_intermediate: int = 0
    max_positions: int = 32768

    @property
    def hd(self) -> int:
        return self.head_dim or self.hidden // self.heads

    @property
    def q_dim(self) -> int:
        return self.heads * self.hd

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.hd


@dataclass(frozen=True)
class ParamCounts:
    """Parameters by the parts that ms-swift freezes separately (freeze_vit / freeze_aligner / freeze_llm)."""

    vision: int  # the ViT without its merger(s): patch embedding, position table, blocks
    aligner: int  # the merger (and Qwen3-VL's deepstack mergers)
    llm_layers: int  # decoder layers + final norm
    embeddings: int  # embed_tokens + lm_head (once when tied)
    largest_layer: int  # the largest single module's own parameters (DeepSpeed ZeRO-3's largest_layer_params)
    decoder_layer: int  # one decoder layer (an FSDP unit)
    vision_block: int

    @property
    def llm(self) -> int:
        return self.llm_layers + self.embeddings

    @property
    def total(self) -> int:
        return self.vision + self.aligner + self.llm


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: Family
    text: TextSpec
    vision: VisionSpec
    source: str  # where the sizes came from: a config.json path or "known model table (...)"
    published_total: int | None = None  # the released checkpoint's parameter count, when published
    published_source: str | None = None

    # ------------------------------------------------------------------ parameter counts

    def params(self) -> ParamCounts:
        t, v = self.text, self.vision
        h = t.hidden
        attn = h * t.q_dim + 2 * h * t.kv_dim + t.q_dim * h
        if t.qkv_bias:
            attn += t.q_dim + 2 * t.kv_dim
        if t.qk_norm:
            attn += 2 * t.hd
        if t.experts:
            mlp = h * t.experts + t.experts * 3 * h * t.moe_intermediate  # router + fused gate_up/down experts
        else:
            mlp = 3 * h * t.intermediate
        layer = attn + mlp + 2 * h  # + input / post-attention RMSNorm
        llm_layers = t.layers * layer + h  # + final norm
        embed = t.vocab * h
        embeddings = embed if t.tie_embeddings else 2 * embed

        vh, vi = v.hidden, v.intermediate
        norm = 2 * vh if v.layer_norm else vh
        vmlp = (3 * vh * vi + 2 * vi + vh) if v.gated_mlp else (2 * vh * vi + vi + vh)
        block = 2 * norm + (vh * 3 * vh + 3 * vh) + (vh * vh + vh) + vmlp
        patch_in = 3 * v.temporal_patch * v.patch * v.patch
        vision = patch_in * vh + (vh if v.patch_bias else 0) + v.position_embeddings * vh + v.depth * block
        merged = vh * v.merge * v.merge
        merger_mlp = merged * merged + merged + merged * v.out_hidden + v.out_hidden
        aligner = norm + merger_mlp  # the merger normalises each patch (width vh) before the shuffle
        post_norm = 2 * merged if v.layer_norm else merged
        aligner += v.deepstack * (post_norm + merger_mlp)  # deepstack mergers normalise after the shuffle
        # nn.Module.parameters(recurse=False), largest first: embed_tokens / lm_head, a fused MoE expert bank,
        # an MLP projection, the merger's square projection
        largest = max(embed, t.experts * 3 * t.moe_intermediate * h if t.experts else h * t.intermediate,
                      merged * merged + merged)
        return ParamCounts(vision=vision, aligner=aligner, llm_layers=llm_layers, embeddings=embeddings,
                           largest_layer=largest, decoder_layer=layer, vision_block=block)

    def active_llm_params(self) -> int:
        """LLM parameters one token passes through (all of them for a dense model; top-k experts for MoE)."""
        p = self.params()
        t = self.text
        if not t.experts:
            return p.llm
        routed = t.layers * t.experts * 3 * t.hidden * t.moe_intermediate
        active = t.layers * t.experts_per_token * 3 * t.hidden * t.moe_intermediate
        return p.llm - routed + active


# ---------------------------------------------------------------------------------------------- known models

_QWEN25_VIT = dict(depth=32, hidden=1280, intermediate=3420, heads=16, full_attention_blocks=4)
# The 32B and 72B checkpoints' vision_config has intermediate_size 3456 (3B and 7B: 3420); the 32B's published total
# is matched exactly only with 3456 (32 blocks x (3 x 1280 x 36 + 2 x 36) = 4,425,984 parameters apart).
_QWEN25_VIT_LARGE = dict(_QWEN25_VIT, intermediate=3456)
_QWEN3_VIT_SMALL = dict(depth=24, hidden=1024, intermediate=4096, heads=16, patch=16, gated_mlp=False, layer_norm=True,
                        patch_bias=True, position_embeddings=2304, deepstack=3)
_QWEN3_VIT = dict(depth=27, hidden=1152, intermediate=4304, heads=16, patch=16, gated_mlp=False, layer_norm=True,
                  patch_bias=True, position_embeddings=2304, deepstack=3)
_QWEN3_TEXT = dict(head_dim=128, qkv_bias=False, qk_norm=True, vocab=151936, max_positions=262144)
HF = "https://huggingface.co/Qwen/{}/blob/main/config.json"


def _q25(name: str, hidden: int, layers: int, heads: int, kv: int, inter: int, vocab: int, tie: bool,
         published: int | None, published_source: str | None, vit: dict[str, Any] = _QWEN25_VIT) -> ModelSpec:
    return ModelSpec(
        name=name, family="qwen2_5_vl",
        text=TextSpec(hidden=hidden, layers=layers, heads=heads, kv_heads=kv, intermediate=inter, vocab=vocab,
                      tie_embeddings=tie, max_positions=128000),
        vision=VisionSpec(out_hidden=hidden, **vit),  # type: ignore[arg-type]
        source=f"known model table ({HF.format(name)})", published_total=published,
        published_source=published_source)


def _q3(name: str, hidden: int, layers: int, heads: int, kv: int, inter: int, tie: bool, vit: dict[str, Any],
        published: int | None = None, published_source: str | None = None, **moe: int) -> ModelSpec:
    family: Family = "qwen3_vl_moe" if moe else "qwen3_vl"
    return ModelSpec(
        name=name, family=family,
        text=TextSpec(hidden=hidden, layers=layers, heads=heads, kv_heads=kv, intermediate=inter,
                      tie_embeddings=tie, **_QWEN3_TEXT, **moe),  # type: ignore[arg-type]
        vision=VisionSpec(out_hidden=hidden, **vit),
        source=f"known model table ({HF.format(name)})", published_total=published,
        published_source=published_source)


# Hyper-parameters as published in each checkpoint's config.json (URL in `source`). Published totals: the count the
# Hugging Face Hub reports for the checkpoint (https://huggingface.co/api/models/Qwen/<name>, safetensors.total), as
# restated in public code found by an exact-number search (the live API was not reachable from here); each source
# says where. tests/estimate/test_models.py checks every total that has one.
_API = "Hub API safetensors.total for Qwen/{}; restated in public code: {}"
KNOWN: dict[str, ModelSpec] = {m.name.lower(): m for m in (
    _q25("Qwen2.5-VL-3B-Instruct", 2048, 36, 16, 2, 11008, 151936, True, 3_754_622_976,
         _API.format("Qwen2.5-VL-3B-Instruct", "EXPECTED_PARAMS = 3754622976 for a Qwen2_5_VLForConditionalGeneration "
                     "3B checkpoint, and MTEB model metadata n_parameters=3754622976 (embedding 311164928)")),
    _q25("Qwen2.5-VL-7B-Instruct", 3584, 28, 28, 4, 18944, 152064, False, 8_292_166_656,
         _API.format("Qwen2.5-VL-7B-Instruct", "a Hub listing numParameters=8292166656, MTEB model metadata "
                     "n_parameters=8292166656 (embedding 544997376), a user's count of the vision module 676550144")),
    _q25("Qwen2.5-VL-32B-Instruct", 5120, 64, 40, 8, 27648, 152064, False, 33_452_718_336,
         _API.format("Qwen2.5-VL-32B-Instruct", "P32 = 33452718336 in public benchmark code"), vit=_QWEN25_VIT_LARGE),
    _q25("Qwen2.5-VL-72B-Instruct", 8192, 80, 64, 8, 29568, 152064, False, None, None, vit=_QWEN25_VIT_LARGE),
    _q3("Qwen3-VL-2B-Instruct", 2048, 28, 16, 8, 6144, True, _QWEN3_VIT_SMALL, 2_127_532_032,
        _API.format("Qwen3-VL-2B-Instruct", "model_parameter_count=2127532032 and assert qcount == 2127532032")),
    _q3("Qwen3-VL-4B-Instruct", 2560, 36, 32, 8, 9728, True, _QWEN3_VIT_SMALL, 4_437_815_808,
        _API.format("Qwen3-VL-4B-Instruct", "total_parameters: 4437815808 for models/qwen/Qwen3-VL-4B-Instruct")),
    _q3("Qwen3-VL-8B-Instruct", 4096, 36, 32, 8, 12288, False, _QWEN3_VIT, 8_767_123_696,
        _API.format("Qwen3-VL-8B-Instruct", 'a verbatim API quote "safetensors":{"parameters":{"BF16":8767123696},'
                    '"total":8767123696}')),
    _q3("Qwen3-VL-32B-Instruct", 5120, 64, 64, 8, 25600, False, _QWEN3_VIT),
    _q3("Qwen3-VL-30B-A3B-Instruct", 2048, 48, 32, 4, 6144, False, _QWEN3_VIT, 31_070_754_032,
        _API.format("Qwen3-VL-30B-A3B-Instruct", "a model catalog's paramCount 31070754032 and a census "
                    "'layers=48 experts=128 topk=8 total_params=31070754032'"),
        experts=128, experts_per_token=8, moe_intermediate=768),
    _q3("Qwen3-VL-235B-A22B-Instruct", 4096, 94, 64, 4, 12288, False, _QWEN3_VIT, 235_670_022_896,
        _API.format("Qwen3-VL-235B-A22B-Instruct", "a model catalog's paramCount 235670022896"),
        experts=128, experts_per_token=8, moe_intermediate=1536),
)}

_ALIASES = re.compile(r"[-_](instruct|thinking|base|fp8|awq|gptq.*)$")


def known_names() -> list[str]:
    return sorted(KNOWN)


def lookup(name: str) -> ModelSpec | None:
    """A known model by name or path: 'Qwen2.5-VL-7B-Instruct', './Qwen2.5-VL-7B-Instruct', 'qwen2.5-vl-7b'."""
    base = Path(str(name).rstrip("/")).name.lower()
    if base in KNOWN:
        return KNOWN[base]
    stem = base
    while (shorter := _ALIASES.sub("", stem)) != stem:
        stem = shorter
    for key, spec in KNOWN.items():
        if _ALIASES.sub("", key) == stem or key.startswith(stem + "-instruct"):
            return spec
    return None


# ---------------------------------------------------------------------------------------------- config.json

def from_config(cfg: dict[str, Any], name: str, source: str) -> ModelSpec:
    """A ModelSpec from a Qwen2.5-VL / Qwen3-VL(-MoE) config.json (nested text_config or the older flat layout)."""
    from ..families import FamilyError
    from ..families import from_config as family_of

    try:
        fam = family_of(cfg, source)  # model_type, else architectures (the families table)
    except FamilyError as exc:
        raise ModelError(str(exc)) from None
    family: Family = fam.name  # type: ignore[assignment]
    txt = cfg.get("text_config") or cfg
    vis = cfg.get("vision_config") or {}
    tie = bool(cfg.get("tie_word_embeddings", txt.get("tie_word_embeddings", False)))
    try:
        q3 = family != "qwen2_5_vl"
        text = TextSpec(
            hidden=int(txt["hidden_size"]), layers=int(txt["num_hidden_layers"]),
            heads=int(txt["num_attention_heads"]),
            kv_heads=int(txt.get("num_key_value_heads") or txt["num_attention_heads"]),
            intermediate=int(txt.get("intermediate_size") or 0), vocab=int(txt["vocab_size"]),
            head_dim=int(txt["head_dim"]) if txt.get("head_dim") else None, tie_embeddings=tie,
            qkv_bias=bool(txt.get("attention_bias", False)) if q3 else True, qk_norm=q3,
            experts=int(txt.get("num_experts") or txt.get("num_local_experts") or 0) if family == "qwen3_vl_moe" else 0,
            experts_per_token=int(txt.get("num_experts_per_tok") or 0) if family == "qwen3_vl_moe" else 0,
            moe_intermediate=int(txt.get("moe_intermediate_size") or 0) if family == "qwen3_vl_moe" else 0,
            max_positions=int(txt.get("max_position_embeddings") or 32768))
        full_att = vis.get("fullatt_block_indexes")
        vision = VisionSpec(
            depth=int(vis["depth"]), hidden=int(vis["hidden_size"]), intermediate=int(vis["intermediate_size"]),
            heads=int(vis["num_heads"]), out_hidden=int(vis.get("out_hidden_size") or text.hidden),
            patch=int(vis.get("patch_size", fam.patch_size)),
            temporal_patch=int(vis.get("temporal_patch_size", fam.temporal_patch_size)),
            merge=int(vis.get("spatial_merge_size", fam.merge_size)), gated_mlp=not q3, layer_norm=q3, patch_bias=q3,
            position_embeddings=int(vis.get("num_position_embeddings") or 0) if q3 else 0,
            deepstack=len(vis.get("deepstack_visual_indexes") or []) if q3 else 0,
            full_attention_blocks=len(full_att) if isinstance(full_att, list) else None)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{source}: cannot read the model sizes ({exc!r} missing or malformed)") from None
    return ModelSpec(name=name, family=family, text=text, vision=vision, source=source)


def resolve(model: str, workdir: str | Path = ".") -> ModelSpec:
    """The spec of `model` (a recipe's sft.model / grpo.model): its config.json when on disk, else the table."""
    text = str(model)
    if "${" not in text:
        path = Path(text) if Path(text).is_absolute() else Path(workdir) / text
        cfg_path = path / "config.json"
        if cfg_path.is_file():
            try:
                cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ModelError(f"{cfg_path}: cannot read ({exc})") from None
            return from_config(cfg, path.name, str(cfg_path))
    spec = lookup(text)
    if spec is None:
        raise ModelError(f"cannot size model {text!r}: no config.json there and not a known model; put the model "
                         f"(or its config.json) there, or pass --model NAME (known: {', '.join(known_names())})")
    return spec
