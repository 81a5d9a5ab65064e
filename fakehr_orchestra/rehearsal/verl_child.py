"""The verl side of a rehearsal, run as `python -m fakehr_orchestra.rehearsal.verl_child` (request on stdin).

It runs verl's own start-up code as far as it goes without a GPU, in the order main_ppo's task runner does:
compose the plan's overrides against the installed ppo_trainer config; build the tokenizer and processor from the
model config (`HFModelConfig`, as the trainer's `_init_tokenizer`); `create_rl_dataset` for the train and the val
files with the real processor and `filter_overlong_prompts` (on a bounded sample of rows); a `RewardLoopWorker`,
which loads the reward function and the reward manager exactly as the training job's reward workers do; and one
batch of real dataset rows scored through it with stand-in responses (rehearsal/standins.py).

Only the training itself (FSDP workers, the vLLM rollout) is left out: those need a GPU.
"""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from typing import Any

from .protocol import StepFailed, Steps, StepSkipped, read_request
from .standins import group


def compose(config_dir: str, overrides: list[str]) -> Any:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir, version_base=None, job_name="fakehr_rehearse"):
        return hydra_compose(config_name="ppo_trainer", overrides=overrides)


def data_proto(tokenizer: Any, rows: list[dict[str, Any]]) -> Any:
    """A DataProto as a reward worker receives it: prompt and right-padded response ids with their attention mask,
    and per sample uid, data_source, reward_model and extra_info."""
    import numpy as np
    import torch
    from verl import DataProto

    prompt = tokenizer("Is this image real or fake?")["input_ids"]
    eos = tokenizer.eos_token or ""
    responses = [tokenizer(row["response"] + eos)["input_ids"] for row in rows]
    width = max(map(len, responses))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    resp = torch.tensor([r + [pad] * (width - len(r)) for r in responses])
    prompts = torch.tensor([prompt] * len(rows))
    mask = torch.cat([torch.ones_like(prompts),
                      torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in responses])], dim=1)
    return DataProto.from_dict(
        tensors={"prompts": prompts, "responses": resp, "attention_mask": mask,
                 "input_ids": torch.cat([prompts, resp], dim=1)},
        non_tensors={key: np.array([row[key] for row in rows], dtype=object)
                     for key in ("uid", "data_source", "reward_model", "extra_info")})


def main() -> int:
    request = read_request()
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever verl / datasets print goes to the log, not into the step channel
    steps = Steps("grpo", protocol)
    state: dict[str, Any] = {}
    overrides = list(request["overrides"])
    sample = int(request["sample_rows"])

    def step_imports() -> tuple[Any, str]:
        import transfer_queue  # noqa: F401 - main_ppo's TaskRunnerV1.run imports it first
        import verl
        from verl.trainer.ppo.v1 import get_trainer_cls  # noqa: F401 - the default (v1) trainer and its imports

        state["config_dir"] = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")
        return None, f"verl {getattr(verl, '__version__', '?')}: main_ppo's task runner and the v1 trainer import"

    def step_compose() -> tuple[Any, str]:
        cfg = compose(state["config_dir"], overrides)
        state["cfg"] = cfg
        return None, f"{len(overrides)} overrides composed against verl's ppo_trainer config"

    def step_processor() -> tuple[Any, str]:
        if request.get("model_missing"):
            raise StepSkipped(request["model_missing"])
        from verl.utils.config import omega_conf_to_dataclass

        model_config = omega_conf_to_dataclass(state["cfg"].actor_rollout_ref.model)
        state["tokenizer"], state["processor"] = model_config.tokenizer, model_config.processor
        if state["processor"] is None:
            raise StepFailed(f"{state['cfg'].actor_rollout_ref.model.path} has no processor: images cannot be read",
                             fix="point grpo.model at a vision-language model folder (with its preprocessor config)")
        note = f" (stand-in: {request['model_note']})" if request.get("model_note") else ""
        return None, f"{type(state['tokenizer']).__name__} + {type(state['processor']).__name__}{note}"

    def dataset(kind: str) -> tuple[Any, str]:
        from verl.trainer.ppo.utils import create_rl_dataset

        cfg = state["cfg"]
        files = cfg.data.train_files if kind == "train" else cfg.data.val_files
        listed = list(files) if not isinstance(files, str) else [files]
        missing = [f for f in listed if not os.path.exists(os.path.expanduser(f))]
        if missing:
            raise StepFailed(f"{missing[0]} does not exist")
        total = _rows(listed)
        if total == 0:
            raise StepFailed(f"{', '.join(listed)} has no rows",
                             fix="the data stage's test split is empty: set data.split.test_fraction or add a test "
                             "source" if kind == "val" else "check the data stage's report (validation.json)")
        ds = create_rl_dataset(files, cfg.data, state["tokenizer"], state["processor"], is_train=kind == "train",
                               max_samples=sample)
        looked = min(total, sample)
        kept = len(ds)
        state[f"{kind}_ds"] = ds
        limit = cfg.data.max_prompt_length
        if kept == 0:
            raise StepFailed(f"none of the {looked} rows looked at survives: data.filter_overlong_prompts drops every "
                             f"prompt longer than data.max_prompt_length={limit} (image tokens included), or the rows "
                             f"cannot be read", key="grpo.overrides.data.max_prompt_length",
                             fix="raise data.max_prompt_length, or lower max_pixels")
        dropped = looked - kept
        note = f"; {dropped} dropped by filter_overlong_prompts (longer than {limit} tokens)" if dropped else ""
        return None, f"{kept} of {looked} rows kept (of {total} in the file){note}"

    def step_reward_fn() -> tuple[Any, str]:
        from verl.trainer.ppo.reward import get_custom_reward_fn

        fn = get_custom_reward_fn(state["cfg"])
        reward = state["cfg"].reward.custom_reward_function
        if fn is None:
            raise StepFailed("no reward function is configured: verl would train with its default reward (for "
                             "math data sources)", fix="set grpo.reward.path")
        return None, f"{reward.path}:{reward.name} loaded by verl's get_custom_reward_fn"

    def step_manager() -> tuple[Any, str]:
        from verl.trainer.ppo.reward import resolve_reward_manager_cls

        return None, f"{resolve_reward_manager_cls(state['cfg']).__name__} resolved by verl"

    def step_worker() -> tuple[Any, str]:
        from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

        worker = RewardLoopWorker(state["cfg"])
        state["worker"] = worker
        return None, f"a reward worker as the job's (tokenizer, function, {type(worker.reward_manager).__name__})"

    def step_score() -> tuple[Any, str]:
        from ..labels import LabelError, normalize_ground_truth

        cfg, ds = state["cfg"], state["train_ds"]
        n = int(cfg.actor_rollout_ref.rollout.n)
        kwargs = dict(cfg.reward.custom_reward_function.get("reward_kwargs", None) or {})
        rows = []
        for i in range(min(len(ds), int(request["score_rows"]))):
            item = ds[i]
            truth_raw = item["reward_model"]["ground_truth"]
            try:
                truth = normalize_ground_truth(truth_raw, kwargs.get("label_convention") or None)
            except LabelError as exc:
                raise StepFailed(f"row {i}: {exc}", key="grpo.train_files",
                                 fix="export the data with `fakehr-orchestra data` (ground truth real/fake)") from None
            for kind, response in group(truth, request["answer_format"], n):
                rows.append({"uid": f"rehearsal-{i}", "data_source": item["data_source"],
                             "reward_model": dict(item["reward_model"]), "extra_info": dict(item["extra_info"] or {}),
                             "response": response, "kind": kind})
        worker = state["worker"]
        data = data_proto(state["tokenizer"], rows)
        outputs = worker.loop.run_until_complete(worker.compute_score_batch(data))
        by_kind: dict[str, list[float]] = defaultdict(list)
        components: set[str] = set()
        for row, out in zip(rows, outputs):
            by_kind[row["kind"]].append(float(out["reward_score"]))
            components.update((out.get("reward_extra_info") or {}).keys())
        mean = {k: sum(v) / len(v) for k, v in by_kind.items()}
        shown = ", ".join(f"{k} {mean[k]:.2f}" for k in ("correct", "correct_reasoned", "wrong", "unparseable")
                          if k in mean)
        if "wrong" in mean and mean.get("correct", 0.0) <= mean["wrong"]:
            raise StepFailed(f"the reward does not prefer a correct answer (mean score {shown})",
                             key="grpo.reward.kwargs", fix="check the reward weights and the label convention")
        critic = ""
        if "consistency" not in components and "consistency" in request.get("optional_components", ()):
            critic = "; critic consistency component skipped (no critic endpoint configured)"
        return None, (f"{len(rows)} responses for {len(rows) // max(n, 1)} rows (rollout.n={n}): mean score {shown}; "
                      f"components {', '.join(sorted(components))}{critic}")

    steps.run("imports", step_imports, key="grpo.engine", timeout=180,
              fix="install the train extra (verl[verl-core]: TransferQueue, cachetools, ...): make venv")
    steps.run("compose", step_compose, key="grpo.overrides", timeout=60, requires=("imports",),
              fix="run `fakehr-orchestra validate` for the key-by-key explanation")
    steps.run("tokenizer+processor", step_processor, key="grpo.model", timeout=120, requires=("compose",),
              fix="point grpo.model at a Hugging Face model folder")
    steps.run("train dataset", lambda: dataset("train"), key="grpo.train_files", timeout=240,
              requires=("tokenizer+processor",), fix="export it with the data stage (grpo.parquet)")
    steps.run("val dataset", lambda: dataset("val"), key="grpo.val_files", timeout=240,
              requires=("tokenizer+processor",),
              fix="set grpo.val_files (the data stage exports the test split as grpo_val.parquet)")
    steps.run("reward function", step_reward_fn, key="grpo.reward.path", timeout=120, requires=("compose",),
              fix="see the error; `fakehr-orchestra reward score` runs the plugin alone")
    steps.run("reward manager", step_manager, key="grpo.reward.manager.name", timeout=60, requires=("compose",),
              fix="name a class defined in grpo.reward.manager.path, or a manager verl registers (naive, dapo, ...)")
    steps.run("reward worker", step_worker, key="grpo.reward.path", timeout=120,
              requires=("tokenizer+processor", "reward function", "reward manager"), fix="see the error")
    steps.run("scored batch", step_score, key="grpo.reward.path", timeout=180,
              requires=("train dataset", "reward worker"),
              fix="the reward raised on real rows: run `fakehr-orchestra reward score` on them")
    protocol.close()
    return 0


def _rows(files: list[str]) -> int:
    import pyarrow.parquet as pq

    total = 0
    for f in files:
        try:
            total += pq.ParquetFile(os.path.expanduser(f)).metadata.num_rows
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a non-parquet file
            raise StepFailed(f"{f} is not a parquet file verl can read ({exc})") from None
    return total


if __name__ == "__main__":
    sys.exit(main())
