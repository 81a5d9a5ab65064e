"""`eval infer` on the tiny random Qwen2.5-VL, on CPU, for real (transformers backend), then score and report.

The tiny model is random: its answers are junk (mostly unparseable). The point is the code path: prompt, images,
batching, incremental writes, resume, and that junk is counted wrong rather than dropped.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, framework_env, require_module

pytestmark = pytest.mark.integration
RECIPE = str(ROOT / "recipes" / "fake_hr1.yaml")
CLI = [sys.executable, "-m", "fakehr_orchestra.cli"]


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-c", "from fakehr_orchestra.cli import main; main()", *args],
                          cwd=ROOT, env=framework_env(), capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args[:2]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}")
    return proc


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_infer_score_report_end_to_end(tiny, tmp_path):
    pred, metrics, report = tmp_path / "pred.jsonl", tmp_path / "m.json", tmp_path / "report"
    cli("eval", "infer", RECIPE, "--profile", "smoke", "--model", tiny["model"], "--data", tiny["eval"],
        "--out", str(pred), "--backend", "transformers", "--batch-size", "3")
    eval_rows = [json.loads(line) for line in Path(tiny["eval"]).read_text().splitlines()]
    got = rows(pred)
    assert sorted(r["key"] for r in got) == sorted(r["file_path"] for r in eval_rows)
    for r in got:
        assert set(r) >= {"response", "pred", "mode", "response_tokens", "latency_s", "label", "category"}
        assert r["pred"] in ("real", "fake", None) and r["response_tokens"] >= 0
    assert [r["batch_size"] for r in got] == [3, 3, 3, 3, 3, 3, 2, 2]
    meta = json.loads((tmp_path / "pred.jsonl.meta.json").read_text())
    assert meta["rows"] == 8 and meta["settings"]["response_prefix"] == "<think>\n"
    assert meta["settings"]["max_pixels"] == 50176  # the smoke profile's vision.max_pixels

    # a second run has nothing to do and loads no model
    again = cli("eval", "infer", RECIPE, "--profile", "smoke", "--model", tiny["model"], "--data", tiny["eval"],
                "--out", str(pred), "--backend", "transformers")
    assert "8 already done, 0 new" in again.stdout
    # other settings into the same file are refused
    other = cli("eval", "infer", RECIPE, "--profile", "smoke", "eval.max_new_tokens=7", "--model", tiny["model"],
                "--data", tiny["eval"], "--out", str(pred), check=False)
    assert other.returncode == 2 and "max_new_tokens" in other.stderr and "Traceback" not in other.stderr

    cli("eval", "score", str(pred), "--out", str(metrics), "--bootstrap", "200")
    m = json.loads(metrics.read_text())
    assert m["overall"]["n"] == 8
    unparseable = sum(r["pred"] is None for r in got)
    correct = sum(r["pred"] == r["label"] for r in got)
    assert m["overall"]["unparseable"] == unparseable  # junk is counted, never dropped
    assert m["overall"]["accuracy"] == pytest.approx(correct / 8)
    assert set(m["groups"]["category"]["values"]) == {"stable_diffusion_v_1_4", "BigGAN"}

    cli("eval", "report", str(metrics), str(metrics), "--names", "sft,grpo", "--out", str(report))
    md = (report / "report.md").read_text()
    assert "| metric | sft | grpo |" in md and "## Per category" in md
    for png in ("confusion_sft.png", "accuracy_by_category.png", "think_rate_by_category.png",
                "response_length.png"):
        assert (report / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    assert json.loads((report / "report.json").read_text())["runs"].keys() == {"sft", "grpo"}


def test_killed_mid_run_then_rerun_gives_one_row_per_image(tiny, tmp_path):
    pred = tmp_path / "pred.jsonl"
    args = ["eval", "infer", RECIPE, "--profile", "smoke", "eval.max_new_tokens=200", "--model", tiny["model"],
            "--data", tiny["eval"], "--out", str(pred), "--backend", "transformers", "--batch-size", "1"]
    proc = subprocess.Popen([sys.executable, "-c", "from fakehr_orchestra.cli import main; main()", *args],
                            cwd=ROOT, env=framework_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            if pred.exists() and pred.read_text().count("\n") >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "inference finished before it could be interrupted"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    written = pred.read_text().count("\n")
    assert 2 <= written < 8, written
    # the worst case of a kill: half a row at the end (a SIGKILL between two write syscalls leaves exactly that)
    with pred.open("a") as handle:
        handle.write('{"key": "' + json.loads(pred.read_text().splitlines()[0])["key"][:-3])
    done = cli(*args[:-2], "--batch-size", "4")
    assert "torn last line" in done.stderr
    got = rows(pred)
    keys = [r["key"] for r in got]
    assert len(keys) == len(set(keys)) == 8
    assert set(keys) == {json.loads(line)["file_path"] for line in Path(tiny["eval"]).read_text().splitlines()}


def test_prompt_and_pixels_match_ms_swift(tiny, tmp_path):
    """Our prompt ids and pixel values equal ms-swift's own qwen2_5_vl template encoding of the same row
    (system prompt with newlines, response prefix, an image large enough to be rescaled by max_pixels)."""
    require_module("swift")
    from PIL import Image
    from swift import get_processor, get_template

    from fakehr_orchestra.evaluation.infer import from_recipe
    from fakehr_orchestra.evaluation.infer.prompting import load_image, prompt_text
    from fakehr_orchestra.recipe import load_recipe

    image = tmp_path / "big.png"
    Image.effect_mandelbrot((400, 300), (-2, -1.2, 1, 1.2), 60).convert("RGB").save(image)
    recipe = load_recipe(RECIPE, (), "smoke")
    settings = from_recipe(recipe, tiny["model"], "transformers")
    assert "\n" in settings.system and "\\n" not in settings.system  # effective form

    from transformers import AutoProcessor
    processor = AutoProcessor.from_pretrained(tiny["model"])
    ours = processor(text=[prompt_text(processor.tokenizer, settings)],
                     images=[load_image(str(image), settings)], return_tensors="pt", do_resize=False)

    swift_proc = get_processor(tiny["model"], model_type="qwen2_5_vl")
    template = get_template(swift_proc, template_type="qwen2_5_vl", max_pixels=settings.max_pixels,
                            response_prefix=settings.response_prefix)
    template.set_mode("pt")
    theirs = template.encode({"messages": [{"role": "system", "content": settings.system},
                                           {"role": "user", "content": settings.user}], "images": [str(image)]})
    assert ours["input_ids"][0].tolist() == list(theirs["input_ids"])
    assert ours["image_grid_thw"].tolist() == theirs["image_grid_thw"].tolist()
    assert ours["pixel_values"].shape == theirs["pixel_values"].shape
    assert (ours["pixel_values"] - theirs["pixel_values"]).abs().max().item() < 1e-5


def test_answer_probability_is_teacher_forced_verdict(tiny):
    """P(fake) at the answer position equals the softmax of the two verdicts' log-probs computed one by one."""
    import torch

    from fakehr_orchestra.evaluation.infer import from_recipe
    from fakehr_orchestra.evaluation.infer.prompting import load_image
    from fakehr_orchestra.evaluation.infer.transformers_backend import TransformersBackend
    from fakehr_orchestra.recipe import load_recipe

    settings = from_recipe(load_recipe(RECIPE, (), "smoke"), tiny["model"], "transformers", device="cpu")
    backend = TransformersBackend(settings)
    paths = [json.loads(line)["file_path"] for line in Path(tiny["eval"]).read_text().splitlines()[:2]]
    images = [load_image(p, settings) for p in paths]
    texts = ["\n</think>\n\nfake", "\nsome thought\n</think>\n\nreal", "junk"]
    probs = backend._answer_probs(texts, images + [images[0]])
    assert probs[2] is None  # unparseable: no probability, never a guess

    def seq_logprob(text: str, image) -> float:
        enc = backend._encode([backend.prompt + text], [image])
        with torch.inference_mode():
            logp = torch.log_softmax(backend.model(**enc).logits.float(), -1)[0]
        ids = enc["input_ids"][0]
        return float(sum(logp[t - 1, ids[t]] for t in range(1, len(ids))))

    for text, image, prob in zip(texts[:2], images, probs):
        before = text[:-4]
        expected = torch.sigmoid(torch.tensor(seq_logprob(before + "fake", image) -
                                              seq_logprob(before + "real", image))).item()
        assert 0.0 < prob < 1.0 and prob == pytest.approx(expected, abs=1e-4)
