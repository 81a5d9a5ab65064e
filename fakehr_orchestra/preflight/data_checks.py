"""Data files exist and look like what the framework reads; real image sizes against the token limits; outputs.

Missing-file policy (documented in docs and `validate --help`): a path holding a launch-time ref (`${env:X}`) or,
with `remote_data` (`--remote-data`), any path is a WARNING (the file lives where the job runs); a path under
`data.workdir` is a warning too (the `data` stage writes it). Anything else missing is an ERROR.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

from .context import Context
from .crosschecks import family, prompt_tokens

SAMPLE_ROWS = 32
VAL_FIX = ("fix the path (verl reads data.val_files at start-up), or point grpo.val_files at "
           "${data.workdir}/grpo_val.parquet: the data stage's test split")


def _path(ctx: Context, text: str) -> Path:
    p = Path(text).expanduser()
    return p if p.is_absolute() else Path(ctx.model.workdir) / p


def present(ctx: Context, key: str, text: str, stage: str | None, what: str, fix: str = "fix the path") -> Path | None:
    """The file if it is here; otherwise a finding by the policy above and None."""
    if "${" in text:
        ctx.warning("data", key, f"{what} {text!r} is known only at launch; not checked here",
                    "validate again at launch (run/submit do)", stage)
        return None
    path = _path(ctx, text)
    if path.exists():
        return path
    workdir = _path(ctx, ctx.model.data.workdir).resolve()
    if workdir in path.resolve().parents:
        ctx.warning("data", key, f"{what} {text} does not exist yet; the data stage writes it into data.workdir",
                    "run `fakehr-orchestra run RECIPE --stages data` (or the whole pipeline) first", stage)
        return None
    if ctx.remote_data:
        ctx.warning("data", key, f"{what} {text} is not on this machine (--remote-data: expected where the job runs)",
                    None, stage)
        return None
    ctx.error("data", key, f"{what} {text} does not exist", f"{fix}, or pass --remote-data when the file "
              "only exists on the cluster", stage)
    return None


def jsonl_rows(path: Path, limit: int) -> Iterator[tuple[int, Any]]:
    if path.suffix == ".json":
        with path.open(encoding="utf-8") as fh:
            rows = json.load(fh)
        for i, row in enumerate(rows[:limit] if isinstance(rows, list) else [rows]):
            yield i + 1, row
        return
    from ..jsonl import read_jsonl

    for row in read_jsonl(path, objects=False, limit=limit, unique_keys=True):  # a bad row raises JsonlError (a ValueError)
        yield row.line, row.value


def smart_resize_tokens(h: int, w: int, max_pixels: int, factor: int = 28, min_pixels: int | None = None) -> int:
    """Visual tokens of one image as ms-swift resizes it for the family's image factor (fakehr_orchestra/vision.py)."""
    from ..vision import tokens

    return tokens(w, h, max_pixels, min_pixels, factor)


def _image_size(item: Any) -> tuple[int, int] | None:
    import io

    from PIL import Image
    try:
        if isinstance(item, dict):
            if item.get("bytes"):
                with Image.open(io.BytesIO(item["bytes"])) as im:
                    return im.size
            item = item.get("image") or item.get("path")
        if isinstance(item, str):
            from ..data.image_file import open_image_file

            file, _ = open_image_file(item)
            with file, Image.open(file) as im:
                return im.size
    except OSError:
        return None
    return None


class Sample:
    """Token counts of sampled rows, to compare with a limit."""

    def __init__(self, factor: int = 28, min_pixels: int | None = None) -> None:
        self.factor, self.min_pixels = factor, min_pixels  # the family's image factor, vision.min_pixels
        self.rows = 0
        self.over: list[tuple[int, int]] = []  # (row, tokens)

    def add(self, row: int, images: list[Any], max_pixels: int, limit: int, base: int) -> None:
        tokens = base
        for item in images:
            size = _image_size(item)
            if size is not None:
                tokens += smart_resize_tokens(size[1], size[0], max_pixels, self.factor, self.min_pixels)
        self.rows += 1
        if tokens > limit:
            self.over.append((row, tokens))


def check_swift_jsonl(ctx: Context, key: str, path: Path, stage: str, assistant: bool, limit: int | None,
                      max_pixels: int) -> None:
    sample = Sample(family(ctx).factor, ctx.model.vision.min_pixels)
    try:
        for row_no, row in jsonl_rows(path, SAMPLE_ROWS):
            msgs = row.get("messages") if isinstance(row, dict) else None
            if not isinstance(msgs, list) or not all(isinstance(m, dict) and "role" in m for m in msgs):
                ctx.error("data", key, f"{path}:{row_no}: not ms-swift's format (a 'messages' list of "
                          "{role, content})", "export with `fakehr-orchestra data export`", stage)
                return
            images = row.get("images") or []
            tags = sum(str(m.get("content", "")).count("<image>") for m in msgs)
            if tags != len(images):
                ctx.error("data", key, f"{path}:{row_no}: {tags} <image> tags but {len(images)} images",
                          None, stage)
                return
            if assistant and not any(m["role"] == "assistant" for m in msgs):
                ctx.error("data", key, f"{path}:{row_no}: SFT rows need an assistant turn", None, stage)
                return
            missing = [i for i in images if isinstance(i, str) and not _path(ctx, i).exists()]
            if missing:
                ctx.error("data", key, f"{path}:{row_no}: image {missing[0]} does not exist", None, stage)
                return
            if limit:
                sample.add(row_no, images, max_pixels, limit, prompt_tokens(ctx))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        ctx.error("data", key, f"{path} cannot be read as JSON lines: {exc}", None, stage)
        return
    report_sample(ctx, key, path, stage, sample, limit, "max_length")


def check_parquet(ctx: Context, key: str, path: Path, cfg: Any) -> None:
    import pyarrow.parquet as pq
    stage = "grpo"
    image_key = str(cfg.data.get("image_key", "images")) if cfg is not None else "images"
    prompt_key = str(cfg.data.get("prompt_key", "prompt")) if cfg is not None else "prompt"
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a non-parquet file
        ctx.error("data", key, f"{path} is not a parquet file verl can read ({exc})",
                  "run the data stage (`fakehr-orchestra run RECIPE --stages data`) or "
                  "`fakehr-orchestra data export ... --only parquet`", stage)
        return
    names = set(pf.schema_arrow.names)
    need = [prompt_key, "reward_model", "data_source", image_key]
    lacking = [c for c in need if c not in names]
    if lacking:
        ctx.error("data", key, f"{path} lacks the column(s) {lacking} verl's RLHFDataset reads "
                  f"(has {sorted(names)})", None, stage)
        return
    limit = int(cfg.data.max_prompt_length) if cfg is not None else None
    sample = Sample(family(ctx).factor, ctx.model.vision.min_pixels)
    batch = next(pf.iter_batches(batch_size=SAMPLE_ROWS, columns=[prompt_key, image_key]), None)
    for i, row in enumerate(batch.to_pylist() if batch is not None else []):
        images = row.get(image_key) or []
        bad = [im for im in images if not (isinstance(im, dict) and (im.get("bytes") or im.get("image")))]
        if bad:
            ctx.error("data", key, f"{path} row {i}: images must be {{'bytes': ...}} or {{'image': path}} "
                      f"(verl/utils/dataset/vision_utils.py); got {str(bad[0])[:80]}", None, stage)
            return
        tags = sum(str(m.get("content", "")).count("<image>") for m in (row.get(prompt_key) or []))
        if tags != len(images):
            ctx.error("data", key, f"{path} row {i}: {tags} <image> placeholders but {len(images)} images "
                      "(RLHFDataset asserts they match)", None, stage)
            return
        if limit:
            from .crosschecks import verl_max_pixels
            sample.add(i, images, verl_max_pixels(ctx)[0], limit, prompt_tokens(ctx))
    report_sample(ctx, "grpo.overrides.data.max_prompt_length", path, stage, sample, limit,
                  "data.max_prompt_length")


def report_sample(ctx: Context, key: str, path: Path, stage: str, sample: Sample, limit: int | None,
                  limit_name: str) -> None:
    if sample.over and limit:
        row, tokens = sample.over[0]
        ctx.error("image", key, f"{len(sample.over)} of {sample.rows} sampled rows of {path} exceed {limit_name} "
                  f"{limit} (row {row}: about {tokens} tokens of image + prompt); "
                  + ("verl's filter_overlong_prompts drops them silently" if stage == "grpo"
                     else "ms-swift drops or fails on them"),
                  f"raise {limit_name} or lower max_pixels", stage)


def check_data(ctx: Context, stages: tuple[str, ...], cfg: Any) -> None:
    m = ctx.model
    for i, src in enumerate(m.data.sources):
        present(ctx, f"data.sources.{i}.path", src.path, None, f"data source {src.name}")
    if "sft" in stages and m.sft is not None:
        limit = m.sft.args.get("max_length")
        mp = m.vision.max_pixels or family(ctx).max_pixels
        for i, item in enumerate(m.sft.dataset):
            path = present(ctx, f"sft.dataset.{i}", item, "sft", "dataset")
            if path is not None and path.is_file():
                check_swift_jsonl(ctx, f"sft.dataset.{i}", path, "sft", True,
                                  int(limit) if isinstance(limit, int) else None, int(mp))
    if "grpo" in stages and m.grpo is not None:
        # verl reads data.val_files at start-up whatever trainer.test_freq says (unset: verl's example path, which
        # verl_config reports); ms-swift does not read it
        declared = [("train_files", "train file")] + ([("val_files", "val file")]
                                                      if m.grpo.engine == "verl" and m.grpo.val_files else [])
        for name, what in declared:
            _check_grpo_files(ctx, name, what, cfg)


def _check_grpo_files(ctx: Context, name: str, what: str, cfg: Any) -> None:
    """grpo.train_files or grpo.val_files: each file present (policy above) and in the engine's format."""
    m = ctx.model
    value = getattr(m.grpo, name)
    files = value if isinstance(value, list) else [value]
    for i, item in enumerate(files):
        key = f"grpo.{name}" + (f".{i}" if isinstance(value, list) else "")
        path = present(ctx, key, item, "grpo", what, VAL_FIX if name == "val_files" else "fix the path")
        if path is None or not path.is_file():
            continue
        if m.grpo.engine == "verl":
            check_parquet(ctx, key, path, cfg)
        else:
            limit = m.grpo.swift_args.get("max_length")
            check_swift_jsonl(ctx, key, path, "grpo", False, limit if isinstance(limit, int) else None,
                              int(m.vision.max_pixels or family(ctx).max_pixels))


def check_outputs(ctx: Context, stages: tuple[str, ...]) -> None:
    """Each output dir, or its nearest existing parent, must be a writable directory."""
    m = ctx.model
    targets = [("data.workdir", m.data.workdir, None), ("eval.output_dir", m.eval.output_dir, None)]
    for stage in stages:
        section = getattr(m, stage, None)
        if section is not None:
            targets.append((f"{stage}.output_dir", section.output_dir, stage))
    for key, text, stage in targets:
        if not text or "${" in str(text):
            continue
        probe = _path(ctx, str(text))
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir():
            ctx.error("output", key, f"{text}: {probe} is a file, not a directory", None, stage)
        elif not os.access(probe, os.W_OK | os.X_OK):
            ctx.error("output", key, f"{text}: {probe} is not writable by this user", "choose another directory",
                      stage)
