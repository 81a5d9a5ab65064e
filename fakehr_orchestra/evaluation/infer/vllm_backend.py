"""vLLM offline batched inference (GPUs, tensor parallel; or vLLM's CPU build). vLLM is imported only here, only when
this backend runs.

The image is resized by us exactly as ms-swift does (see prompting.py) and handed to vLLM with `do_resize=False`,
as ms-swift's own vLLM path does (ms-swift issue 8445), so vLLM's processor does not resize it a second time.
P(fake) is scored like the transformers backend: both verdicts teacher-forced after the model's reasoning, read from
vLLM's prompt log-probs.

The model's generation config `suppress_tokens` (the tokens transformers' generate never emits) reach vLLM as a
-100 logit bias (vLLM's bound), so both backends answer from the same distribution.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from ..reader import EvalItem
from .base import Generation, verdict_pairs
from .prompting import Decoded, model_images, prompt_text
from .settings import InferSettings


def _suppressed(model: str) -> list[int]:
    from transformers import GenerationConfig

    try:
        config = GenerationConfig.from_pretrained(model)
    except OSError:  # no generation_config.json: nothing suppressed
        return []
    return [int(t) for t in (getattr(config, "suppress_tokens", None) or [])]


class VllmBackend:
    def __init__(self, settings: InferSettings):
        from transformers import AutoProcessor
        from vllm import LLM, SamplingParams

        self.settings = settings
        processor = AutoProcessor.from_pretrained(settings.model)
        self.tokenizer = processor.tokenizer
        self.patch_size = int(getattr(processor.image_processor, "patch_size", 14))
        self.prompt = prompt_text(self.tokenizer, settings)
        self.llm = LLM(model=settings.model, tensor_parallel_size=settings.tensor_parallel_size,
                       dtype=settings.dtype, seed=settings.seed, limit_mm_per_prompt={"image": 1},
                       gpu_memory_utilization=settings.gpu_memory_utilization,
                       max_model_len=settings.max_model_len, enforce_eager=settings.enforce_eager,
                       mm_processor_kwargs={"do_resize": False})
        suppressed = _suppressed(settings.model)
        self.sampling = SamplingParams(temperature=settings.temperature, top_p=settings.top_p,
                                       max_tokens=settings.max_new_tokens, seed=settings.seed,
                                       skip_special_tokens=True,
                                       logit_bias={t: -100.0 for t in suppressed} if suppressed else None)
        self.scoring = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0.0)

    def _request(self, text: str, image: Any) -> dict[str, Any]:
        return {"prompt": text, "multi_modal_data": {"image": image}}

    def generate(self, items: list[EvalItem], decoded: Decoded = None) -> list[Generation]:
        images, errors = model_images(items, self.settings, self.patch_size, decoded)
        results = {i: Generation("", 0, "error", None, msg) for i, msg in errors.items()}  # wrong, reported rows
        order = sorted(images)
        outputs = self.llm.generate([self._request(self.prompt, images[i]) for i in order], self.sampling,
                                    use_tqdm=False)
        for i, out in zip(order, outputs):
            completion = out.outputs[0]
            reason = "length" if completion.finish_reason == "length" else "stop"
            results[i] = Generation(completion.text, len(completion.token_ids), reason)
        if self.settings.answer_scores and order:
            for i, prob in zip(order, self._answer_probs([results[i].text for i in order], [images[i] for i in order])):
                g = results[i]
                results[i] = Generation(g.text, g.tokens, g.finish_reason, prob)
        return [results[i] for i in range(len(items))]

    def _answer_probs(self, texts: list[str], images: list[Any]) -> list[Optional[float]]:
        probs: list[Optional[float]] = [None] * len(texts)
        requests, rows = [], []
        for row, before, fake_word, real_word in verdict_pairs(texts, self.settings.answer_format,
                                                              self.settings.response_prefix):
            requests += [self._request(self.prompt + before + fake_word, images[row]),
                         self._request(self.prompt + before + real_word, images[row])]
            rows.append(row)
        if not requests:
            return probs
        outs = self.llm.generate(requests, self.scoring, use_tqdm=False)
        for k, row in enumerate(rows):
            a, b = outs[2 * k], outs[2 * k + 1]
            ids_a, ids_b = list(a.prompt_token_ids), list(b.prompt_token_ids)
            c = 0
            while c < min(len(ids_a), len(ids_b)) and ids_a[c] == ids_b[c]:
                c += 1
            lp_a = sum(a.prompt_logprobs[t][ids_a[t]].logprob for t in range(c, len(ids_a)))
            lp_b = sum(b.prompt_logprobs[t][ids_b[t]].logprob for t in range(c, len(ids_b)))
            probs[row] = 1.0 / (1.0 + math.exp(lp_b - lp_a))
        return probs
