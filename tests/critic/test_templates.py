"""Critic templates: the `sophiavl_r1` request equals the one SophiaVL-R1's code builds, and its reply is read as
SophiaVL-R1 reads it. The reference below restates github.com/kxfan2002/SophiaVL-R1 `verl/workers/reward/custom.py`
(`get_process_reward`, `pil_to_base64`, `extract_score` and its extractors) independently of the code under test:
a mismatch in either is a failure here."""

from __future__ import annotations

import asyncio
import base64
import io
import re
from pathlib import Path
from typing import Any, Optional

import pytest
from PIL import Image

from fakehr_orchestra.critic import templates
from tests.rewards.critic_server import CriticServer, fixed


# ----------------------------------------------------------------------------- SophiaVL-R1, restated
def sophiavl_pil_to_base64(pil_img: Image.Image) -> str:
    buffer = io.BytesIO()
    pil_img.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("utf-8")


def sophiavl_payload(prompt_str: str, reasoning_str: str, image: Optional[str], reward_model: str) -> dict[str, Any]:
    """get_process_reward's request: the f-string, the messages (text, then image) and the payload."""
    if image is not None and "<image>" not in prompt_str:
        prompt_str = f"<image> {prompt_str}"
    prompt = f"""You are an expert reasoning evaluator. I will give you a multimodal question and an answer. Your goal is to judge a reward process and give a score between 0 and 1. You should focus on whether the reasoning process is good rather than whether the final answer is correct.### Evaluation Criteria:\n- **Logical Soundness**: Does each step follow logically from the previous one?\n- **Correct Reasoning**: Are the methods and steps used appropriate and valid? Are the facts and lemmas correctly stated and applied?\n- **Error Identification**: Are there any logical fallacies, unsupported assumptions, or incorrect steps?\n- **Language Consistency**: Is the reasoning process conducted in a single, consistent language without mixing different languages?\n- **Redundancy**: Is the reasoning concise, without unnecessary repetition or extraneous steps?\nProvide a single score from **{{0, 0.1, 0.2, ..., 1.0}}** based on the reasoning quality, where:\n - **0**: Completely flawed reasoning\n- **1**: Perfectly sound reasoning\n- Intermediate values (e.g., 0.3, 0.7) should reflect partial correctness or minor errors.\nBe strict, reward the good process and punish the bad one. You should only output the score without any explanation.
    Question: {prompt_str}
    Reasoning process: {reasoning_str}
    Your response format: <answer>your_score</answer>
    """  # noqa: E501 - their line, verbatim
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": [{"type": "text", "text": prompt}]},
    ]
    if image is not None:
        messages[1]["content"].append({"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}})
    return {"model": reward_model, "messages": messages, "temperature": 0.0}


def sophiavl_extract_score(text: str) -> float:
    """extract_score: the first extractor that matches, clamped; 0 when none does."""
    def box(t: str) -> Optional[float]:
        m = re.search(r'\\box(?:es)?\{([01](?:\.\d)?)\}', t)
        return float(m.group(1)) if m else None

    def xml(t: str) -> Optional[float]:
        m = re.search(r'<answer>\s*([01](?:\.\d)?)\s*</answer>', t)
        return float(m.group(1)) if m else None

    def plain(t: str) -> Optional[float]:
        m = re.search(r'\b([01](?:\.\d)?)\b', t)
        return float(m.group(1)) if m else None

    def after_think(t: str) -> Optional[float]:
        for pattern in (r'</think>\s*<answer>\s*([\d.]+)\s*</answer>', r'</think>\s*([\d.]+)'):
            m = re.search(pattern, t)
            if m:
                s = m.group(1)
                return int(s) if s.isdigit() else float(s)
        return None

    def total_wrong(t: str) -> Optional[float]:
        m = re.search(r'Total Wrong Steps\*\*:\s*(\d+)', t)
        return int(m.group(1)) if m else None

    def zero_wrong(t: str) -> Optional[float]:
        m = re.search(r'\*\*(\d+)\s+wrong steps\*\*', t)
        return int(m.group(1)) if m else None

    def wrong(t: str) -> Optional[float]:
        m = re.search(r'\*\*.*?\bWrong Steps\*\*:\s*(\d+)', t)
        return int(m.group(1)) if m else None

    for extractor in (box, xml, plain, after_think, total_wrong, zero_wrong, wrong):
        score = extractor(text)
        if score is not None:
            return min(1, max(0, score))
    return 0


# ----------------------------------------------------------------------------- the tests
RESPONSE = ("<think>\n[Why fake] the text on the sign is warped, costs $5\n[If real] a moving sign blurs\n</think>\n"
            "<answer>Fake</answer>")


@pytest.fixture()
def image_file(tmp_path: Path) -> Path:
    path = tmp_path / "img.jpg"  # a JPEG: the request still carries a PNG, as SophiaVL-R1's does
    Image.new("RGB", (24, 16), (200, 30, 90)).save(path, format="JPEG")
    return path


def client_body(critic: Any, question: str, image: Any, **config: Any) -> dict[str, Any]:
    """The body the reward's client really sends (captured by a real HTTP server)."""
    with CriticServer(fixed("<answer>0.7</answer>"), models=("thinking-reward-model",)) as server:
        client = critic.CriticClient(critic.CriticConfig(
            base_url=server.base_url, model="thinking-reward-model", template="sophiavl_r1", question=question,
            **config))

        async def go() -> Any:
            try:
                return await client.score("reasoning only", "fake", image, response=RESPONSE)
            finally:
                await client.aclose()
        result = asyncio.run(go())
        assert result.score == pytest.approx(0.7) and not result.fallback
        assert len(server.requests) == 1
        return server.requests[0]


@pytest.fixture(scope="module")
def critic() -> Any:
    """rewards/critic.py of this checkout, loaded by path as the reward plugins load it."""
    from fakehr_orchestra.plugins import load_plugin_file
    return load_plugin_file(Path(__file__).resolve().parents[2] / "rewards" / "critic.py")


@pytest.mark.parametrize("question", ["Is this image real or fake?", "<image>Is this image real or fake?"])
def test_sophiavl_body_equals_theirs(critic, image_file: Path, question: str) -> None:  # type: ignore[no-untyped-def]
    sent = client_body(critic, question, str(image_file), max_tokens=None)
    with Image.open(image_file) as pil:
        image = sophiavl_pil_to_base64(pil)
    reasoning_str = RESPONSE.replace("$$", "").replace("$", "")  # their reward manager strips "$" first
    assert sent == sophiavl_payload(question, reasoning_str, image, "thinking-reward-model")


def test_sophiavl_body_without_image(critic) -> None:  # type: ignore[no-untyped-def]
    sent = client_body(critic, "Is this image real or fake?", None, max_tokens=None)
    assert sent == sophiavl_payload("Is this image real or fake?", RESPONSE.replace("$", ""), None,
                                    "thinking-reward-model")


def test_max_tokens_is_ours_to_add(critic, image_file: Path) -> None:  # type: ignore[no-untyped-def]
    sent = client_body(critic, "Q", str(image_file), max_tokens=512)
    assert sent["max_tokens"] == 512  # SophiaVL-R1 sends none; a recipe may bound it


@pytest.mark.parametrize("reply,expected", [
    ("<answer>0.7</answer>", 0.7), ("\\box{0.4}", 0.4), ("0.9", 0.9),
    ("\\boxes{1.0} then <answer>0.2</answer>", 1.0),  # box before xml
    ("I think 0.3 <answer>0.8</answer>", 0.8),  # xml before the first bare number
    ("<answer>0.75</answer>", 0.0),  # neither box nor xml takes two decimals; the bare-number rule reads "0"
    ("score 10, <think>x</think> 7", 1.0),  # "10" is no bare 0..1 number; the number after </think>, clamped
    ("**Total Wrong Steps**: 3", 1.0), ("**2 wrong steps**", 1.0),
    ("<answer>1</answer>", 1.0), ("The reasoning is solid: 1", 1.0),
])
def test_sophiavl_parser_matches_theirs(reply: str, expected: float) -> None:
    ours = templates.parse_sophiavl_score(reply)
    assert ours == pytest.approx(expected)
    assert ours == pytest.approx(sophiavl_extract_score(reply))


@pytest.mark.parametrize("reply", ["", "banana", "score: 7 of ten", None])
def test_sophiavl_no_score_is_none_not_zero(reply: Any) -> None:
    """SophiaVL-R1 scores these 0; we leave them to the caller's counted fallback, as every template does."""
    assert templates.parse_sophiavl_score(reply) is None
    if isinstance(reply, str):
        assert sophiavl_extract_score(reply) == 0


def test_json_score_is_todays_prompt(critic) -> None:  # type: ignore[no-untyped-def]
    client = critic.CriticClient(critic.CriticConfig(base_url="http://127.0.0.1:9/v1", model="judge"))
    body = client.payload("[Why fake] a [If real] b", "fake", "data:image/png;base64,AAAA")
    assert body["messages"][0] == {"role": "system", "content": templates.JSON_SCORE_SYSTEM}
    assert body["messages"][1]["content"][0]["type"] == "image_url"  # image first, then the text
    assert body["max_tokens"] == 64 and body["temperature"] == 0.0
    assert critic.parse_score('{"score": 0.6}') == pytest.approx(0.6)


def test_unknown_template_names_the_known_ones(critic) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="json_score, sophiavl_r1"):
        critic.CriticConfig(base_url="http://127.0.0.1:9/v1", template="sophia")


def test_reward_kwargs_reach_the_client_null_max_tokens_included() -> None:
    """What the recipe renders (critic_template, critic_question, critic_max_tokens=null) configures the client."""
    from fakehr_orchestra.plugins import load_plugin_file
    vlm = load_plugin_file(Path(__file__).resolve().parents[2] / "rewards" / "fakevlm_r1.py")
    client = vlm.critic_client({"critic_base_url": "http://127.0.0.1:9/v1", "critic_model": "thinking-reward-model",
                                "critic_template": "sophiavl_r1", "critic_question": "<image>Real or fake?",
                                "critic_max_tokens": None})
    assert (client.config.template, client.config.question, client.config.max_tokens) == \
        ("sophiavl_r1", "<image>Real or fake?", None)
    assert "max_tokens" not in client.payload("r", "fake", None)
