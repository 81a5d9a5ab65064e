"""Calibrate the SFT memory estimate against a real training step: random-init Qwen2.5-VL at real sizes (no weights
needed), one sample of a given length with one image, gradient checkpointing on and off; prints, as JSON lines,
torch.cuda.max_memory_allocated next to the estimate's allocated bytes for the same settings.

    python benchmarks/calibrate_memory.py --model-size 3b                 # on a CUDA GPU: 2 lengths x GC on/off
    python benchmarks/calibrate_memory.py --model-size 7b --seq 2048 4096
    python benchmarks/calibrate_memory.py --model-size tiny --device cpu  # the CPU check of the harness itself
    python benchmarks/calibrate_memory.py --formulas                       # CPU: activation formulas vs autograd

What one step is: model in bf16 (fp32 for --device cpu), full fine-tuning of LLM, ViT and merger, torch AdamW
(fused on CUDA, so the optimizer step needs no temporaries), the loss on the last `--labels` positions only
(logits_to_keep, as ms-swift 4.6 does with transformers 5), attention sdpa. Two steps run; the peak of the second
(optimizer states already allocated) is what is compared. A step that runs out of memory is reported as such, with
the estimate next to it (the estimate should say it does not fit).

--formulas needs no GPU: for a small model of each family (Qwen2.5-VL, Qwen3-VL, Qwen3-VL-MoE) it records every
tensor autograd saves for backward (torch.autograd.graph.saved_tensors_hooks; parameters excluded, each storage
once) in one decoder layer and in the whole vision tower, and prints it next to the per-token / per-patch formulas
of fakehr_orchestra/estimate/activations.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fakehr_orchestra.estimate.gpus import custom  # noqa: E402
from fakehr_orchestra.estimate.memory_sft import SftSettings, estimate_sft  # noqa: E402
from fakehr_orchestra.estimate.models import KNOWN, ModelSpec, from_config  # noqa: E402

SIZES = {"3b": "qwen2.5-vl-3b-instruct", "7b": "qwen2.5-vl-7b-instruct"}
IMAGE_START, IMAGE_END = 151652, 151653  # Qwen's vision_start / vision_end token ids
GIB = 2 ** 30


def spec_for(size: str, tiny_dir: Path) -> ModelSpec:
    if size == "tiny":
        cfg = json.loads((tiny_dir / "config.json").read_text())
        return from_config(cfg, "tiny", str(tiny_dir / "config.json"))
    return KNOWN[SIZES[size]]


def build_model(spec: ModelSpec, tiny_dir: Path, device: str, dtype: Any) -> Any:
    import torch
    import transformers as tf

    if spec.name == "tiny":
        config = tf.AutoConfig.from_pretrained(tiny_dir)
    else:
        t, v = spec.text, spec.vision
        config = tf.Qwen2_5_VLConfig(
            text_config=dict(hidden_size=t.hidden, num_hidden_layers=t.layers, num_attention_heads=t.heads,
                             num_key_value_heads=t.kv_heads, intermediate_size=t.intermediate, vocab_size=t.vocab,
                             tie_word_embeddings=t.tie_embeddings, max_position_embeddings=t.max_positions),
            vision_config=dict(depth=v.depth, hidden_size=v.hidden, intermediate_size=v.intermediate,
                               num_heads=v.heads, out_hidden_size=v.out_hidden),
            tie_word_embeddings=t.tie_embeddings)
    config._attn_implementation = "sdpa"
    with torch.device(device):
        model = tf.Qwen2_5_VLForConditionalGeneration(config).to(dtype)
    model.config.use_cache = False
    return model, config


def batch(spec: ModelSpec, config: Any, seq: int, image_tokens: int, labels: int, device: str, dtype: Any) -> dict:
    """One sample of `seq` tokens: text, one image of `image_tokens` visual tokens (a square-ish grid), text."""
    import torch

    v = spec.vision
    side = 1
    while (side + 1) * (side + 1) <= image_tokens:
        side += 1
    h, w = side * v.merge, (image_tokens // side) * v.merge
    n_tokens = (h // v.merge) * (w // v.merge)
    patches = h * w
    pixel_values = torch.randn(patches, 3 * v.temporal_patch * v.patch * v.patch, device=device, dtype=dtype)
    grid = torch.tensor([[1, h, w]], device=device)
    text = seq - n_tokens - 2
    if text < labels + 1:
        raise SystemExit(f"--seq {seq} too short for {n_tokens} image tokens and {labels} labels")
    image_id = int(getattr(config, "image_token_id", 151655))
    ids = torch.randint(0, 1000, (seq,), device=device)
    first = text - labels
    ids[first] = IMAGE_START
    ids[first + 1:first + 1 + n_tokens] = image_id
    ids[first + 1 + n_tokens] = IMAGE_END
    input_ids = ids.unsqueeze(0)
    lab = input_ids[:, -(labels + 1):].clone()
    lab[:, 0] = -100
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "pixel_values": pixel_values,
            "image_grid_thw": grid, "labels": lab, "logits_to_keep": labels + 1, "_image_tokens": n_tokens}


def run(spec: ModelSpec, tiny_dir: Path, seq: int, image_tokens: int, labels: int, gc: bool, device: str,
        steps: int = 2) -> dict[str, Any]:
    import torch

    cuda = device.startswith("cuda")
    dtype = torch.bfloat16 if cuda else torch.float32
    row: dict[str, Any] = {"model": spec.name, "seq": seq, "gradient_checkpointing": gc, "device": device}
    model = opt = None
    try:
        model, config = build_model(spec, tiny_dir, device, dtype)
        if gc:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=cuda)
        inputs = batch(spec, config, seq, image_tokens, labels, device, dtype)
        row["image_tokens"] = inputs.pop("_image_tokens")
        start = time.time()
        for step in range(steps):
            if cuda and step == steps - 1:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            loss = model(**inputs).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
            row["measured_gib"] = torch.cuda.max_memory_allocated() / GIB
            row["reserved_gib"] = torch.cuda.max_memory_reserved() / GIB
        else:
            row["measured_gib"] = None
        row["seconds"] = round(time.time() - start, 2)
        row["status"] = "ok"
    except torch.OutOfMemoryError as exc:
        row.update(status="oom", measured_gib=None, error=str(exc).splitlines()[0])
    finally:
        del model, opt
        if cuda:
            torch.cuda.empty_cache()
    s = SftSettings(nodes=1, gpus_per_node=1, tuner="full", freeze_llm=False, freeze_vit=False, freeze_aligner=False,
                    dtype_bytes=2 if cuda else 4, gradient_checkpointing=gc, max_length=seq,
                    max_pixels=row.get("image_tokens", image_tokens) * spec.vision.patch ** 2 * spec.vision.merge ** 2,
                    prompt_tokens=seq - row.get("image_tokens", image_tokens) - labels, response_tokens=labels,
                    attn_impl="sdpa", logits_to_keep=True)
    total = (torch.cuda.get_device_properties(0).total_memory / GIB) if cuda else 1e6
    est = estimate_sft(spec, s, custom(total))
    row["estimated_allocated_gib"] = est.peak.allocated / GIB
    row["estimated_needed_gib"] = est.needed / GIB
    row["estimate_verdict"] = est.verdict
    row["estimate_peak_phase"] = est.peak.name
    if row.get("measured_gib"):
        row["estimate_over_measured"] = row["estimated_allocated_gib"] / row["measured_gib"]
    return row


def saved_bytes(fn: Any, exclude: set[int]) -> int:
    """Bytes of the distinct storages autograd saves while `fn` runs (parameters' storages in `exclude`)."""
    import torch

    seen: dict[int, int] = {}

    def pack(t: Any) -> Any:
        st = t.untyped_storage()
        if st.data_ptr() not in exclude:
            seen[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def formula_rows(device: str = "cpu") -> list[dict[str, Any]]:
    """Measured vs formula bytes, per token of a decoder layer and per patch of the whole vision tower."""
    import torch
    import transformers as tf

    from fakehr_orchestra.estimate import activations as act

    rope = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [4, 6, 6]}
    text = dict(hidden_size=256, num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=2,
                intermediate_size=688, vocab_size=1000)
    vision = dict(depth=2, hidden_size=128, intermediate_size=344, num_heads=4, out_hidden_size=256)
    families = {
        "qwen2_5_vl": (tf.Qwen2_5_VLConfig, tf.Qwen2_5_VLForConditionalGeneration, {}, {"fullatt_block_indexes": [1]}),
        "qwen3_vl": (tf.Qwen3VLConfig, tf.Qwen3VLForConditionalGeneration, {"head_dim": 32},
                     {"deepstack_visual_indexes": [0], "num_position_embeddings": 64}),
        "qwen3_vl_moe": (tf.Qwen3VLMoeConfig, tf.Qwen3VLMoeForConditionalGeneration,
                         {"head_dim": 32, "num_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 96},
                         {"deepstack_visual_indexes": [0], "num_position_embeddings": 64}),
    }
    rows = []
    for family, (cfg_cls, model_cls, text_extra, vision_extra) in families.items():
        r = dict(rope, mrope_interleaved=True) if family != "qwen2_5_vl" else rope
        cfg = cfg_cls(text_config=dict(text, rope_parameters=r, **text_extra),
                      vision_config=dict(vision, **vision_extra))
        cfg._attn_implementation = "sdpa"
        for dtype, a in ((torch.float32, 4), (torch.bfloat16, 2)):
            with torch.device(device):
                model = model_cls(cfg).to(dtype)
            spec = from_config(cfg.to_dict(), family, "formula check")
            params = {p.untyped_storage().data_ptr() for p in model.parameters()}
            tokens = 512
            x = torch.randn(1, tokens, spec.text.hidden, dtype=dtype, device=device, requires_grad=True)
            pos = torch.arange(tokens, device=device).view(1, 1, -1).expand(3, 1, -1)
            cos, sin = model.model.language_model.rotary_emb(x, pos)
            layer = model.model.language_model.layers[0]
            shared = {cos.untyped_storage().data_ptr(), sin.untyped_storage().data_ptr()}
            got = saved_bytes(lambda: layer(x, position_embeddings=(cos, sin), attention_mask=None,  # noqa: B023 - called at once
                                            position_ids=pos),  # noqa: B023
                              params | shared) / tokens
            rows.append({"family": family, "dtype": str(dtype).split(".")[-1], "part": "decoder layer, per token",
                         "measured": got, "formula": act.text_layer(spec.text, a)})
            v = spec.vision
            side = 32
            pixels = torch.randn(side * side, 3 * v.temporal_patch * v.patch * v.patch, dtype=dtype, device=device)
            grid = torch.tensor([[1, side, side]], device=device)
            got = saved_bytes(lambda: model.model.visual(pixels, grid_thw=grid),  # noqa: B023,F821 - called at once
                              params) / (side * side)
            rows.append({"family": family, "dtype": str(dtype).split(".")[-1], "part": "vision tower, per patch",
                         "measured": got, "formula": v.depth * act.vision_block(v, a) + act.vision_extra(v, a)})
            del model
    for row in rows:
        row["formula_over_measured"] = row["formula"] / row["measured"]
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-size", choices=["tiny", *SIZES], default="3b")
    ap.add_argument("--seq", type=int, nargs="+", default=None, help="sequence lengths (default 2048 8192; tiny: "
                    "128 256)")
    ap.add_argument("--image-tokens", type=int, default=None, help="visual tokens of the one image (default seq/2)")
    ap.add_argument("--labels", type=int, default=None, help="label tokens at the end of the sample "
                    "(default min(64, seq/8))")
    ap.add_argument("--gc", choices=["both", "on", "off"], default="both")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny-dir", default=str(ROOT / ".cache" / "tiny" / "model"))
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--formulas", action="store_true", help="check the activation formulas against autograd (CPU)")
    args = ap.parse_args(argv)
    if args.formulas:
        for row in formula_rows("cpu" if args.device == "cuda" and not _cuda() else args.device):
            print(json.dumps(row), flush=True)
        return 0
    tiny_dir = Path(args.tiny_dir)
    if args.model_size == "tiny" and not (tiny_dir / "config.json").is_file():
        from fakehr_orchestra.tinyworld import build_tiny
        tiny_dir = Path(build_tiny(ROOT / ".cache" / "tiny")["model"])
    spec = spec_for(args.model_size, tiny_dir)
    seqs = args.seq or ([128, 256] if args.model_size == "tiny" else [2048, 8192])
    gcs = {"both": [True, False], "on": [True], "off": [False]}[args.gc]
    for seq in seqs:
        for gc in gcs:
            labels = args.labels or max(1, min(64, seq // 8))
            row = run(spec, tiny_dir, seq, args.image_tokens or seq // 2, labels, gc, args.device, args.steps)
            print(json.dumps(row), flush=True)
    return 0


def _cuda() -> bool:
    import torch
    return torch.cuda.is_available()


if __name__ == "__main__":
    sys.exit(main())
