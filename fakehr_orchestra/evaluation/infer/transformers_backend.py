"""transformers `generate`, batched with left padding: CPU or GPU; the fallback backend, and what tests drive.

Qwen2.5-VL's processor pads on the right by default; batched generation needs left padding, or every shorter prompt
would generate after its pad tokens.
"""

from __future__ import annotations

from typing import Any, Optional

from ..reader import EvalItem
from .base import Generation, verdict_pairs
from .prompting import Decoded, model_images, prompt_text
from .settings import InferSettings


def _device(settings: InferSettings) -> str:
    import torch

    if settings.device:
        return settings.device
    return "cuda" if torch.cuda.is_available() else "cpu"


class TransformersBackend:
    def __init__(self, settings: InferSettings):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.settings = settings
        self.device = _device(settings)
        self.processor = AutoProcessor.from_pretrained(settings.model)
        self.processor.tokenizer.padding_side = "left"
        self.tokenizer = self.processor.tokenizer
        dtype: Any = "auto" if settings.dtype == "auto" else getattr(torch, settings.dtype)
        self.model = AutoModelForImageTextToText.from_pretrained(settings.model, dtype=dtype).to(self.device).eval()
        self.prompt = prompt_text(self.tokenizer, settings)
        self.patch_size = int(getattr(self.processor.image_processor, "patch_size", 14))
        eos = self.model.generation_config.eos_token_id
        self.stop_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.pad_token_id is not None:
            self.stop_ids.add(self.tokenizer.pad_token_id)
        torch.manual_seed(settings.seed)

    # ------------------------------------------------------------------ generation
    def _encode(self, texts: list[str], images: list[Any]) -> Any:
        enc = self.processor(text=texts, images=images, padding=True, return_tensors="pt", do_resize=False)
        return enc.to(self.device)

    def generate(self, items: list[EvalItem], decoded: Decoded = None) -> list[Generation]:
        import torch

        prepared, errors = model_images(items, self.settings, self.patch_size, decoded)
        ok = sorted(prepared)
        images = [prepared[i] for i in ok]
        results: dict[int, Generation] = {i: Generation("", 0, "error", None, msg) for i, msg in errors.items()}
        if ok:
            enc = self._encode([self.prompt] * len(ok), images)
            sample = self.settings.temperature > 0
            kwargs: dict[str, Any] = {"max_new_tokens": self.settings.max_new_tokens, "do_sample": sample}
            if sample:
                kwargs.update(temperature=self.settings.temperature, top_p=self.settings.top_p)
            else:
                kwargs.update(temperature=None, top_p=None, top_k=None)
            with torch.inference_mode():
                out = self.model.generate(**enc, **kwargs)
            new = out[:, enc["input_ids"].shape[1]:].tolist()
            texts: list[str] = []
            for row, ids in zip(ok, new):
                end = next((t for t, tok in enumerate(ids) if tok in self.stop_ids), None)
                kept = ids if end is None else ids[:end]
                text = self.tokenizer.decode(kept, skip_special_tokens=True)
                texts.append(text)
                results[row] = Generation(text, len(kept), "length" if end is None else "stop")
            if self.settings.answer_scores:
                probs = self._answer_probs(texts, images)
                for row, prob in zip(ok, probs):
                    g = results[row]
                    results[row] = Generation(g.text, g.tokens, g.finish_reason, prob)
        return [results[i] for i in range(len(items))]

    # ------------------------------------------------------------------ P(fake) at the answer position
    def _answer_probs(self, texts: list[str], images: list[Any]) -> list[Optional[float]]:
        """Teacher-force both verdicts after the model's own reasoning; P(fake) = softmax of their log-probs."""
        import torch

        pairs = verdict_pairs(texts, self.settings.answer_format, self.settings.response_prefix)
        probs: list[Optional[float]] = [None] * len(texts)
        if not pairs:
            return probs
        seqs, imgs = [], []
        for row, before, fake_word, real_word in pairs:
            seqs += [self.prompt + before + fake_word, self.prompt + before + real_word]
            imgs += [images[row], images[row]]
        enc = self._encode(seqs, imgs)
        ids, mask = enc["input_ids"], enc["attention_mask"]
        lengths = mask.sum(1).tolist()
        unpadded = [ids[r, ids.shape[1] - n:].tolist() for r, n in enumerate(lengths)]
        starts = []
        for k in range(len(pairs)):
            a, b = unpadded[2 * k], unpadded[2 * k + 1]
            c = 0
            while c < min(len(a), len(b)) and a[c] == b[c]:
                c += 1
            starts += [c, c]
        keep = max(n - s for n, s in zip(lengths, starts)) + 1
        with torch.inference_mode():
            logits = self.model(**enc, logits_to_keep=keep).logits.float()
        logp = torch.log_softmax(logits, dim=-1)  # [B, keep, V]; position j predicts token L-keep+j+1
        total = ids.shape[1]
        scores = []
        for r, (n, s) in enumerate(zip(lengths, starts)):
            lp = 0.0
            for t in range(s, n):  # unpadded token t sits at padded position total-n+t
                q = total - n + t - 1 - (total - keep)  # logits row that predicts it
                lp += float(logp[r, q, ids[r, total - n + t]])
            scores.append(lp)
        for k, (row, *_rest) in enumerate(pairs):
            fake_lp, real_lp = scores[2 * k], scores[2 * k + 1]
            probs[row] = float(torch.sigmoid(torch.tensor(fake_lp - real_lp)))
        return probs
