"""The ms-swift side of a rehearsal, run as `python -m fakehr_orchestra.rehearsal.swift_child` (request on stdin).

It runs ms-swift's own start-up code for the plan's options, as `swift sft` / `swift rlhf` would: the argument
dataclass parsed from the rendered options (`swift.utils.parse_args`, remaining arguments are an error exactly as in
SwiftPipeline), which resolves the model and template from the model folder; the template with the processor
(`args.get_template()`, no weights loaded); the dataset (`args.load_dataset()`, on the rehearsal's sample rows);
every row encoded through the template, counting rows longer than max_length; and for ms-swift's GRPO the reward
functions resolved as its trainer resolves them (`resolve_reward_funcs`) and called on stand-in completions.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
from collections import defaultdict
from typing import Any

from .protocol import StepFailed, Steps, StepSkipped, read_request
from .standins import group


def main() -> int:
    request = read_request()
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # ms-swift's logging goes to the log, not into the step channel
    stage = request["stage"]
    steps = Steps(stage, protocol)
    state: dict[str, Any] = {}
    command = request["command"]  # sft | rlhf
    section = "sft" if stage == "sft" else "grpo"

    def step_imports() -> tuple[Any, str]:
        import swift
        from swift.arguments import RLHFArguments, SftArguments

        state["args_class"] = SftArguments if command == "sft" else RLHFArguments
        return None, f"ms-swift {swift.__version__}"

    def step_arguments() -> tuple[Any, str]:
        if request.get("model_missing"):
            raise StepSkipped(request["model_missing"])
        from swift.utils import parse_args

        args, remaining = parse_args(state["args_class"], list(request["options"]))
        if remaining:
            raise StepFailed(f"swift {command} would stop with ValueError: remaining_argv: {remaining}",
                             key=f"{section}.args", fix="`fakehr-orchestra validate` names the flag")
        state["args"] = args
        note = f" (stand-in: {request['model_note']})" if request.get("model_note") else ""
        return None, f"model_type {args.model_type}, template {args.template}{note}"

    def step_template() -> tuple[Any, str]:
        template = state["args"].get_template()
        state["template"] = template
        return None, f"{type(template).__name__} with {type(template.processor).__name__}"

    def step_dataset() -> tuple[Any, str]:
        absent = [d for d in state["args"].dataset if _absent_file(d)]
        if absent:
            raise StepSkipped(f"dataset {absent[0]} is not on this machine (validate reports it; in a pipeline the "
                              "data stage writes it): not loaded, since ms-swift takes a path that does not exist "
                              "for a hub dataset id and tries to download it")
        train, _ = state["args"].load_dataset()
        if train is None or len(train) == 0:
            raise StepFailed("the dataset has no rows")
        state["train"] = train
        return None, f"{len(train)} rows loaded (the rehearsal's sample of the first rows)"

    def step_encode() -> tuple[Any, str]:
        template, train, args = state["template"], state["train"], state["args"]
        template.set_mode("train" if command == "sft" else "pt")
        limit = args.max_length
        longest, over, failed = 0, [], []
        for i in range(len(train)):
            try:
                encoded = template.encode(train[i])
            except Exception as exc:  # noqa: BLE001 - ms-swift's own message for a row it cannot encode
                failed.append(f"row {i}: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            length = len(encoded["input_ids"])
            longest = max(longest, length)
            if limit and length > limit:
                over.append(i)
        if failed:
            raise StepFailed(f"{len(failed)} of {len(train)} rows fail to encode; first: {failed[0]}",
                             key=f"{section}.dataset" if command == "sft" else "grpo.train_files")
        if over and len(over) == len(train):
            raise StepFailed(f"every row is longer than max_length={limit} (longest {longest} tokens)",
                             key=f"{section}.args.max_length", fix="raise max_length or lower max_pixels")
        note = f"; {len(over)} longer than max_length={limit} (rows {over[:5]})" if over else ""
        return None, f"{len(train)} rows encoded, longest {longest} tokens{note}"

    def step_rewards() -> tuple[Any, str]:
        from swift.rlhf_trainers.utils import resolve_reward_funcs

        args, train = state["args"], state["train"]
        funcs, names = resolve_reward_funcs(args.reward_funcs, args)
        rows = []
        for i in range(min(len(train), int(request["score_rows"]))):
            row = train[i]
            truth = str(row.get("solution"))
            for kind, completion in group(truth, request["answer_format"], int(request["n"])):
                rows.append((kind, completion, truth, row.get("images")))
        completions = [c for _, c, _, _ in rows]
        kwargs = {"solution": [t for _, _, t, _ in rows], "images": [im for _, _, _, im in rows]}
        by_kind: dict[str, list[float]] = defaultdict(list)
        for func, _name in zip(funcs, names):
            scores = func(completions, **kwargs)
            if inspect.isawaitable(scores):
                scores = asyncio.run(scores)
            for (kind, _, _, _), score in zip(rows, scores):
                by_kind[kind].append(float(score))
        mean = {k: sum(v) / len(v) for k, v in by_kind.items()}
        shown = ", ".join(f"{k} {mean[k]:.2f}" for k in ("correct", "correct_reasoned", "wrong", "unparseable")
                          if k in mean)
        if "wrong" in mean and mean.get("correct", 0.0) <= mean["wrong"]:
            raise StepFailed(f"the reward does not prefer a correct answer (mean score {shown})",
                             key="grpo.reward.kwargs", fix="check the reward weights and the label convention")
        return None, f"{', '.join(names)} on {len(rows)} stand-in completions: mean score {shown}"

    steps.run("imports", step_imports, key=f"{section}.engine" if stage == "grpo" else "sft", timeout=180,
              fix="install the train extra (ms-swift): make venv")
    steps.run("arguments", step_arguments, key=f"{section}.model", timeout=180, requires=("imports",),
              fix="see the error; `fakehr-orchestra validate` checks every flag")
    steps.run("template", step_template, key=f"{section}.args.template" if stage == "sft" else "grpo.swift_args",
              timeout=120, requires=("arguments",), fix="check model_type / template against the model folder")
    steps.run("dataset", step_dataset, key="sft.dataset" if stage == "sft" else "grpo.train_files", timeout=120,
              requires=("arguments",), fix="export it with the data stage")
    steps.run("encode", step_encode, key="sft.dataset" if stage == "sft" else "grpo.train_files", timeout=180,
              requires=("template", "dataset"), fix="see the error")
    if command == "rlhf":
        steps.run("reward functions", step_rewards, key="grpo.reward.path", timeout=180,
                  requires=("dataset",), fix="run `fakehr-orchestra reward score` on the plugin")
    protocol.close()
    return 0


def _absent_file(dataset: str) -> bool:
    """Whether an ms-swift dataset entry names a local data file (`path[#rows]` with a data file's suffix) that
    does not exist; a hub id (`org/name`, `org/name:subset`) is not a file."""
    path = dataset.rsplit("#", 1)[0] if "#" in dataset else dataset
    return path.endswith(DATA_SUFFIXES) and not os.path.exists(path)


DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet", ".txt")


if __name__ == "__main__":
    sys.exit(main())
