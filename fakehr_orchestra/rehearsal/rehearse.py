"""A rehearsal of a recipe's start-up: the frameworks' own start-up code, on CPU, as far as it goes without a GPU.

Validation checks names and values against the installed frameworks' schemas; a rehearsal runs the code a job
runs in its first minutes, where most failures after queueing happen: verl's task-runner imports, its datasets
(train and val, with the real processor and the overlong-prompt filter), its reward workers loading our reward
function and manager and scoring real rows; ms-swift's argument parsing, template and dataset encoding, and its
GRPO reward functions. Each part runs in its own child process (ms-swift and verl do not share a process: their
imports deadlock `datasets` pools), all at once, every step under a timeout (supervise.py), so it never hangs.

Inputs are what the pipeline would give each stage: when the recipe has data sources, a sample of the data stage
(the first records of each source) is prepared in a temporary folder and wired in as the pipeline wires the real
exports; the GRPO stage trains the SFT checkpoint, which does not exist yet, so its tokenizer and processor are
taken from the SFT stage's base model (said in the step's detail). What is not on this machine (a model, data
read at launch from the environment) is skipped with the reason, never failed.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any, Mapping, Optional

from ..pipeline.stages import PREFLIGHT as STAGES  # the stages a rehearsal knows: data and the training stages
from ..pipeline.stages import TRAINING
from ..refs import PLAN_REF, fill_plan_refs, fill_recipe_env_refs
from .protocol import StepResult
from .supervise import run_child

SAMPLE_RECORDS = 64  # per data source, and rows of each training file
SCORE_ROWS = 4  # dataset rows scored, each with rollout.n stand-in responses


def rehearse(recipe: Any, stages: tuple[str, ...] = STAGES, environ: Optional[Mapping[str, str]] = None,
             versions: Optional[dict[str, str]] = None, log_dir: Optional[Path] = None) -> list[StepResult]:
    """Rehearse `stages` of a loaded recipe; returns every step's result in order (failures carry key and fix).

    With "data" among the stages (a pipeline run), the training stages are rehearsed on a sample of what the data
    stage writes; without it, on the recipe's own files (a stage run alone)."""
    environ = dict(environ or {})
    training = tuple(s for s in TRAINING if s in stages and getattr(recipe.model, s, None) is not None)
    with tempfile.TemporaryDirectory(prefix="fakehr-rehearsal-") as tmp:
        work = Path(tmp)
        logs = Path(log_dir) if log_dir else work / "logs"
        results: list[StepResult] = []
        sampled = "data" in stages and bool(recipe.model.data.sources) and bool(training)
        data = _data_sample(recipe, work, logs, results) if sampled else None
        if sampled and data is None and results and results[-1].status == "failed":
            # the training stages would read files the data stage never wrote; ms-swift takes a dataset path
            # that does not exist for a hub id and tries to download it (until the step's timeout)
            for stage in training:
                results.append(StepResult(stage, "start-up", "skipped", "the data sample failed (see the data "
                                          "step): the stage's start-up reads the files the data stage writes"))
            training = ()
        jobs = []
        for stage in training:
            job = _stage_job(recipe, stage, data, work, environ, versions, results)
            if job is not None:
                jobs.append(job)
        outcome: dict[int, list[StepResult]] = {}

        def launch(i: int, job: dict[str, Any]) -> None:
            outcome[i] = run_child(job["stage"], job["module"], job["request"], logs / f"rehearse-{job['name']}.log",
                                   job["cwd"], {**environ, **job["env"]})

        threads = [threading.Thread(target=launch, args=(i, job), daemon=True) for i, job in enumerate(jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i in range(len(jobs)):
            results.extend(outcome.get(i, []))
        if log_dir is None and any(r.status == "failed" for r in results):
            kept = Path(tempfile.mkdtemp(prefix="fakehr-rehearsal-logs-"))
            for log in logs.glob("*.log"):
                (kept / log.name).write_bytes(log.read_bytes())
            for r in results:
                if r.status == "failed":
                    r.detail = r.detail.replace(str(logs), str(kept))
            results.append(StepResult("", "logs", "ok", f"the rehearsal's logs are kept in {kept}"))
    return results


def _data_sample(recipe: Any, work: Path, logs: Path, results: list[StepResult]) -> Optional[dict[str, str]]:
    from ..data.stage import load_artifacts

    out = work / "data"
    request = {"recipe": str(recipe.path), "overrides": list(recipe.overrides), "profile": recipe.profile,
               "out": str(out), "limit": SAMPLE_RECORDS}
    steps = run_child("data", "fakehr_orchestra.rehearsal.data_child", request, logs / "rehearse-data.log",
                      str(Path.cwd()))
    results.extend(steps)
    if not steps or steps[-1].status != "ok":
        return None
    return load_artifacts(out)


def _exists(recipe: Any, path: str) -> bool:
    p = Path(path).expanduser()
    return (p if p.is_absolute() else Path(recipe.model.workdir) / p).exists()


def _fill(text: str, environ: Mapping[str, str]) -> str:
    return fill_plan_refs(text, environ)


def _recipe_value(text: Any, environ: Mapping[str, str]) -> str:
    """A recipe path with its launch-time references (${env:NAME}) filled where the environment has them."""
    return fill_recipe_env_refs(str(text), environ)


def _model(recipe: Any, stage: str, environ: Mapping[str, str]) -> tuple[str, Optional[str], Optional[str]]:
    """(model path, why it is missing or None, stand-in note or None)."""
    m = recipe.model
    own = _recipe_value(getattr(m, stage).model, environ)
    if "${" not in own and _exists(recipe, own):
        return own, None, None
    if stage == "grpo" and m.sft is not None:
        base = _recipe_value(m.sft.model, environ)
        if "${" not in base and _exists(recipe, base):
            return base, None, f"the SFT stage's base model {base}; GRPO trains the SFT checkpoint, which has its " \
                               "tokenizer and processor"
    where = "is read from the environment at launch" if "${" in own else "is not on this machine"
    return own, f"the model {own} {where}: steps that need it are skipped", None


def _head(src: str, dest: Path, rows: int) -> str:
    """The first rows of a jsonl file (ms-swift loads whole files: a rehearsal looks at a sample)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(src, encoding="utf-8", errors="replace") as fin, open(dest, "w", encoding="utf-8") as fout:
        for i, line in enumerate(fin):
            if i >= rows:
                break
            fout.write(line)
    return str(dest)


def _stage_job(recipe: Any, stage: str, data: Optional[dict[str, str]], work: Path, environ: Mapping[str, str],
               versions: Optional[dict[str, str]], results: list[StepResult]) -> Optional[dict[str, Any]]:
    from ..engines import RenderError, render
    from ..engines.torchrun import TORCHRUN_ENV

    m = recipe.model
    section = getattr(m, stage)
    engine = "swift" if stage == "sft" else section.engine
    model, missing, note = _model(recipe, stage, environ)
    update: dict[str, Any] = {"model": model, "output_dir": str(work / f"{stage}-output")}
    if stage == "sft":
        files = [data["sft"]] if data else [_recipe_value(f, environ) for f in section.dataset]
        update["dataset"] = [_head(f, work / "head" / f"sft{i}.jsonl", SAMPLE_RECORDS) if f.endswith(".jsonl")
                             and _exists(recipe, f) else f for i, f in enumerate(files)]
    elif data:
        from ..data.export import wired_inputs
        for key, export in wired_inputs(m).items():  # a val file of the user's own is rehearsed as declared
            if key.startswith("grpo."):
                update[key.split(".", 1)[1]] = [data[export]]
    rehearsed = recipe.with_section(stage, **update)
    if stage == "grpo" and getattr(m, "critic", None) is not None and m.critic.mode == "server":
        # the pipeline starts the critic server at the GRPO stage (and checks it answers then); a rehearsal does not
        results.append(StepResult(stage, "critic", "skipped", "the critic server is started by the pipeline at the "
                                  "GRPO stage and checked then; the rehearsal scores without it"))
        rehearsed = rehearsed.with_section("critic", mode="off")
    try:
        plan = render(rehearsed, stage, versions)
    except RenderError as exc:
        results.append(StepResult(stage, "render", "failed", str(exc), stage))
        return None
    options = [_fill(a, environ) for a in plan.options]
    unresolved = sorted({r for a in options for r in PLAN_REF.findall(a)})
    if unresolved:
        results.append(StepResult(stage, "start-up", "skipped", f"the plan takes {', '.join(unresolved)} from the "
                                  "environment at launch; set them to rehearse it here"))
        return None
    # the plan's env (offline hubs, the ms-swift reward adapter's FAKEHR_REWARD_*), minus the torchrun settings:
    # a rehearsal is one process on this machine
    env = {k: _fill(v, environ) for k, v in plan.env.items() if k not in TORCHRUN_ENV}
    env = {k: v for k, v in env.items() if not PLAN_REF.search(v)}
    request: dict[str, Any] = {"options": options, "model_missing": missing, "model_note": note,
                               "answer_format": m.prompt.answer_format, "score_rows": SCORE_ROWS,
                               "sample_rows": SAMPLE_RECORDS, "stage": stage}
    if engine == "verl":
        request.update(overrides=options,
                       optional_components=["consistency"] if m.method == "fakevlm_r1" else [])
        return {"stage": stage, "name": f"{stage}-verl", "module": "fakehr_orchestra.rehearsal.verl_child",
                "request": request, "cwd": plan.cwd, "env": env}
    request.update(command=plan.entrypoint.split()[-1], n=int(section.swift_args.get("num_generations") or 4)
                   if stage == "grpo" else 1)
    return {"stage": stage, "name": f"{stage}-swift", "module": "fakehr_orchestra.rehearsal.swift_child",
            "request": request, "cwd": plan.cwd, "env": env}
