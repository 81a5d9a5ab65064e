"""The stages of a method, in order, and how each one's artifacts become the next one's inputs.

    data  -> sft.dataset (exports), grpo.train_files (parquet for verl, jsonl for ms-swift), eval set
    sft   -> grpo.model (ms-swift's last_model_checkpoint)
    grpo  -> merge (verl: global_step_N/actor) or directly eval (ms-swift GRPO saves HF folders)
    merge -> eval (merged HF model)
    eval  -> inference + metrics for the SFT and the RL model, and one side-by-side report; with eval.sets, the
             suite (every model on every set, eval suite) too

REGISTRY, at the end, holds one `Stage` record per stage: its plan builder, what it produced (produced.py), where
it resumes, the hint when its input is missing. It is the one stage list: the runner, preflight, rehearsal and the
CLI take theirs from it, and the runner never branches on a stage's name.

Every step is a Plan, built here without running anything; an artifact not produced yet appears as a placeholder
such as `<sft.checkpoint>`, which is what `run --dry-run` shows as the wiring. A stage may also need services:
servers started before its steps and stopped after them (the critic for GRPO with `critic.mode: server`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..data.export.writer import stage_inputs, wired_inputs
from ..engines import render
from ..engines.plan import Plan
from . import produced
from .rundir import RunDir

if TYPE_CHECKING:
    from ..recipe.load import Recipe
    from ..recipe.schema.recipe import RecipeModel

CLI = "fakehr-orchestra"


@dataclass
class Step:
    name: str  # also the log file's name
    plan: Plan  # plan.launcher says how it runs: "ray" (a verl driver on a Ray cluster) or on this node


@dataclass
class ServiceStep:
    """A server a stage needs: started before its steps, ready when `url` answers as `model`, stopped after."""

    name: str  # also the log file's name
    plan: Plan
    url: str  # the base URL the stage's reward gets (may hold ${NAME} launch-time references)
    model: str  # the served model name the readiness probe expects
    where: str  # where it runs, in words
    port: int  # checked before the start: `swift deploy` moves off a busy port silently
    ready_timeout_s: float
    api_key_env: str | None = None
    max_tokens: int | None = 64
    blocked: str | None = None  # why this run cannot start it here (e.g. it needs a node of its own)
    template: str = "json_score"  # the probe's judged request is the reward's (critic/templates.py)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "model": self.model, "where": self.where, "port": self.port,
                "ready_timeout_s": self.ready_timeout_s, "api_key_env": self.api_key_env,
                "max_tokens": self.max_tokens, "template": self.template, "blocked": self.blocked,
                "plan": self.plan.to_dict()}


@dataclass
class StagePlan:
    stage: str
    steps: list[Step] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)  # recipe key or role -> value taken from upstream
    skip_reason: str | None = None  # set when the stage cannot or need not run here
    passthrough: dict[str, str] = field(default_factory=dict)  # artifacts of a skipped stage (e.g. merge)
    metrics: dict[str, str] = field(default_factory=dict)  # eval: model name -> the metrics file it will write
    services: list[ServiceStep] = field(default_factory=list)  # servers running while the steps run
    # what the stage's commands read by content rather than from their argv (the resolved recipe's sections, an
    # eval set's digest): part of to_dict(), so of the plan digest, so a change reruns the stage
    reads: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {"stage": self.stage, "inputs": self.inputs, "skip_reason": self.skip_reason,
               "steps": [{"name": s.name, "plan": s.plan.to_dict()} for s in self.steps]}
        if self.services:  # absent otherwise, so plan digests of stages without services do not change
            out["services"] = [s.to_dict() for s in self.services]
        if self.reads:
            out["reads"] = self.reads
        return out


@dataclass
class Wiring:
    """What a stage builder needs: the recipe, where the run lives, and what upstream stages produced."""

    # a Recipe; Any because each builder reads its own stage's section, which the schema makes optional (a stage
    # selected for a recipe without its section is refused first: check_sections)
    recipe: Any
    run: RunDir
    resolved_recipe: Path
    artifacts: dict[str, dict[str, str]]
    versions: dict[str, str] = field(default_factory=dict)
    resume_from: dict[str, str] = field(default_factory=dict)  # stage -> checkpoint to resume from
    live: bool = False  # running for real: only artifacts that exist are wired (a dry run shows placeholders)
    nodes: int | None = None  # a Slurm job's node count: verl's trainer.nnodes (ms-swift takes it from its env)

    def get(self, stage: str, name: str) -> str:
        return self.artifacts.get(stage, {}).get(name) or f"<{stage}.{name}>"

    def has(self, stage: str, name: str) -> bool:
        return bool(self.artifacts.get(stage, {}).get(name))


def has_cuda_gpu() -> bool:
    """Without importing torch: the driver's tool lists the GPUs."""
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def _section(model: RecipeModel, dotted: str) -> Any:
    """The JSON form of a recipe key (None when a section on its path is absent)."""
    value: Any = model
    for part in dotted.split("."):
        if value is None:
            return None
        value = value.get(part) if isinstance(value, dict) else getattr(value, part)
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


# The recipe keys each stage's own commands read from the resolved recipe (its argv names only the file's path):
# `data prepare` (data/stage.py, data/export/settings.py) and `eval infer` (evaluation/infer/settings.py, the eval
# set reader). A change to any of them must rerun the stage; a change elsewhere (e.g. a GRPO learning rate) must not.
RECIPE_READS = {
    "data": ("method", "data", "prompt", "vision", "sft.args.system", "grpo.swift_args.system"),
    "eval": ("name", "eval", "prompt", "vision", "cluster.device", "critic"),  # critic: `eval consistency`
}


def recipe_reads(stage: str, model: RecipeModel) -> dict[str, Any]:
    return {key: _section(model, key) for key in RECIPE_READS.get(stage, ())}


def file_digest(path: str) -> str:
    """A file's content digest for a plan digest ('missing' when it is not there, e.g. in a dry run)."""
    from .artifacts import ArtifactError, digest
    try:
        return digest(path)
    except (ArtifactError, OSError):
        return "missing"


def data_stage(w: Wiring, selected: tuple[str, ...]) -> StagePlan:
    out = w.run.stage_dir("data")
    plan = Plan(stage="data", argv=[CLI, "data", "prepare", str(w.resolved_recipe), "--out", str(out)],
                cwd=w.recipe.model.workdir)
    return StagePlan("data", [Step("data", plan)], reads={"recipe": recipe_reads("data", w.recipe.model)})


def sft_stage(w: Wiring, selected: tuple[str, ...]) -> StagePlan:
    update: dict[str, Any] = {"output_dir": str(w.run.stage_dir("sft"))}
    inputs: dict[str, str] = {}
    if "data" in selected or w.has("data", "sft"):
        update["dataset"] = [w.get("data", stage_inputs("swift")["sft.dataset"])]
        inputs["sft.dataset"] = update["dataset"][0]
    recipe = w.recipe.with_section("sft", **update)
    if w.resume_from.get("sft"):
        args = dict(recipe.model.sft.args, resume_from_checkpoint=w.resume_from["sft"])
        recipe = recipe.with_section("sft", args=args)
        inputs["sft.args.resume_from_checkpoint"] = w.resume_from["sft"]
    return StagePlan("sft", [Step("sft", render(recipe, "sft", w.versions))], inputs)


def grpo_stage(w: Wiring, selected: tuple[str, ...]) -> StagePlan:
    grpo = w.recipe.model.grpo
    update: dict[str, Any] = {"output_dir": str(w.run.stage_dir("grpo"))}
    inputs: dict[str, str] = {}
    if "sft" in selected or w.has("sft", "checkpoint"):
        update["model"] = w.get("sft", "checkpoint")
        inputs["grpo.model"] = update["model"]
    if "data" in selected or w.has("data", "sft"):
        for key, export in wired_inputs(w.recipe.model).items():  # a val file of the user's own stays
            section, _, field = key.partition(".")
            if section == "grpo":
                update[field] = [w.get("data", export)]
                inputs[key] = update[field][0]
    # where the training curves are read from (pipeline/curves.py): the swift adapter's reward trace, verl's
    # file logger and tensorboard folder (used only when trainer.logger turns them on)
    update["env"] = dict(grpo.env or {}, **curve_env(w.run.stage_dir("grpo"), grpo.engine))
    recipe = w.recipe.with_section("grpo", **update)
    if grpo.engine == "swift" and w.resume_from.get("grpo"):
        args = dict(recipe.model.grpo.swift_args, resume_from_checkpoint=w.resume_from["grpo"])
        recipe = recipe.with_section("grpo", swift_args=args)
        inputs["grpo.swift_args.resume_from_checkpoint"] = w.resume_from["grpo"]
    if grpo.engine == "verl" and w.resume_from.get("grpo"):
        # named, not left to trainer.resume_mode=auto: the plan and the manifest say which checkpoint it resumes
        resume = {"trainer.resume_mode": "resume_path", "trainer.resume_from_path": w.resume_from["grpo"]}
        overrides = {k: v for k, v in recipe.model.grpo.overrides.items() if k.lstrip("+") not in resume}
        recipe = recipe.with_section("grpo", overrides={**overrides, **resume})
        inputs["grpo.overrides.trainer.resume_from_path"] = w.resume_from["grpo"]
    stage = StagePlan("grpo", [Step("grpo", render(recipe, "grpo", w.versions, nodes=w.nodes))], inputs)
    if grpo.engine == "verl" and not has_cuda_gpu():
        stage.skip_reason = ("verl's GRPO workers need a CUDA GPU and none was found (nvidia-smi); on a CPU machine "
                             "use grpo.engine=swift (ms-swift's GRPO with the same reward plugin)")
    if recipe.model.critic.mode == "server":
        stage.services.append(critic_service(w))
    return stage


def curve_env(grpo_dir: Path, engine: str) -> dict[str, str]:
    """The env that puts a GRPO run's metric logs where pipeline/curves.py reads them."""
    if engine == "swift":
        return {"FAKEHR_REWARD_TRACE_DIR": str(grpo_dir / "reward_trace")}
    return {"VERL_FILE_LOGGER_PATH": str(grpo_dir / "verl_metrics.jsonl"),
            "TENSORBOARD_DIR": str(grpo_dir / "tensorboard")}


def critic_service(w: Wiring) -> ServiceStep:
    """The critic server the GRPO stage's reward asks (its URL is in the GRPO plan's reward kwargs already), and
    evaluation's consistency step (which reads it from the recipe's critic section)."""
    from ..engines.critic import endpoint, placement

    critic = w.recipe.model.critic
    server = critic.server
    blocked = None
    if server.node == "own":
        blocked = ("critic.server.node is own (a node of its own): `run` starts services on this node only; "
                   "submit the pipeline to a scheduler that places it, or start the critic elsewhere and set "
                   "critic.mode=external critic.url=http://HOST:PORT/v1")
    return ServiceStep("critic", render(w.recipe, "critic", w.versions), str(endpoint(w.recipe.model)),
                       critic.served_model_name, placement(w.recipe.model), server.port, server.ready_timeout_s,
                       critic.api_key_env, critic.max_tokens, blocked, critic.template)


def merge_stage(w: Wiring, selected: tuple[str, ...]) -> StagePlan:
    if w.recipe.model.grpo.engine != "verl":
        return StagePlan("merge", skip_reason="ms-swift GRPO checkpoints are already Hugging Face model folders; "
                         "nothing to merge", passthrough={"model": w.get("grpo", "checkpoint")})
    target = w.run.stage_dir("merge") / "hf"
    actor = w.get("grpo", "checkpoint")
    plan = Plan(stage="merge", argv=["python3", "-m", "verl.model_merger", "merge", "--backend", "fsdp",
                                     "--local_dir", actor, "--target_dir", str(target)],
                cwd=w.recipe.model.workdir, engine="verl", entrypoint="verl.model_merger", head=3,
                output_dir=str(target))
    stage = StagePlan("merge", [Step("merge", plan)], {"local_dir": actor})
    if not w.has("grpo", "checkpoint") and "grpo" not in selected:
        stage.skip_reason = "no GRPO checkpoint to merge"
    return stage


def eval_models(w: Wiring, selected: tuple[str, ...]) -> dict[str, str]:
    """Which models to evaluate, by name: the SFT checkpoint and the RL model, whichever this run has."""
    def wanted(stage: str, name: str) -> bool:
        return w.has(stage, name) or (not w.live and stage in selected)

    models: dict[str, str] = {}
    if wanted("sft", "checkpoint"):
        models["sft"] = w.get("sft", "checkpoint")
    if wanted("merge", "model"):
        models["grpo"] = w.get("merge", "model")
    elif wanted("grpo", "checkpoint"):
        models["grpo"] = w.get("grpo", "checkpoint")
    if not models:
        models["base"] = w.recipe.model.sft.model if w.recipe.model.sft else "<model>"
    return models


def eval_stage(w: Wiring, selected: tuple[str, ...]) -> StagePlan:
    model = w.recipe.model
    data = model.eval.dataset or w.get("data", "eval")
    out = w.run.stage_dir("eval")
    cwd = model.workdir
    steps, metrics = [], []
    models = eval_models(w, selected)
    for name, path in models.items():
        pred, score = out / name / "predictions.jsonl", out / name / "metrics.json"
        cons = out / name / "consistency.json"
        steps.append(Step(f"eval-infer-{name}", Plan(stage="eval", cwd=cwd, argv=[
            CLI, "eval", "infer", str(w.resolved_recipe), "--model", path, "--data", data, "--out", str(pred)])))
        # the critic's score of each answer's reasoning (with critic.mode off: a file saying it was not computed)
        steps.append(Step(f"eval-consistency-{name}", Plan(stage="eval", cwd=cwd, argv=[
            CLI, "eval", "consistency", str(w.resolved_recipe), "--predictions", str(pred), "--out", str(cons)])))
        steps.append(Step(f"eval-score-{name}", Plan(stage="eval", cwd=cwd, argv=[
            CLI, "eval", "score", str(pred), "--consistency", str(cons), "--out", str(score)])))
        metrics.append(str(score))
    curves = []  # the training curves of the stages whose models are evaluated (pipeline/curves.py)
    for stage in ("sft", "grpo"):
        if w.has(stage, "curves") or (not w.live and stage in selected and stage in models):
            curves += ["--curves", f"{stage}={w.get(stage, 'curves')}"]
    steps.append(Step("eval-report", Plan(stage="eval", cwd=cwd, argv=[
        CLI, "eval", "report", *metrics, "--names", ",".join(models), *curves, "--out", str(out / "report")])))
    if model.eval.sets:  # the recipe's test suite: every model on every set (and perturbation), one matrix
        named = [arg for name, path in models.items() for arg in ("--model", f"{name}={path}")]
        steps.append(Step("eval-suite", Plan(stage="eval", cwd=cwd, argv=[
            CLI, "eval", "suite", str(w.resolved_recipe), *named, "--out", str(out / "suite")])))
    inputs = {f"model.{name}": path for name, path in models.items()}
    inputs["data"] = data
    reads: dict[str, Any] = {"recipe": recipe_reads("eval", model)}
    if model.eval.dataset:  # an eval set from outside the run dir (the data stage's is an artifact, digested)
        reads["eval_set_sha256"] = file_digest(str(Path(model.workdir) / model.eval.dataset))
    plan = StagePlan("eval", steps, inputs, metrics=dict(zip(models, metrics)), reads=reads)
    if model.critic.mode == "server":  # `eval consistency` asks it, as the GRPO reward did
        plan.services.append(critic_service(w))
    return plan


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline: what every other module knows about it, in one record.

    The runner asks the record (its plan, what it produced, where it resumes, what to say when an input is missing)
    and never branches on a stage's name; preflight, rehearsal and the CLI take their stage lists from REGISTRY."""

    name: str
    build: Callable[[Wiring, tuple[str, ...]], StagePlan]  # its plan, wired to what upstream stages produced
    collect: Callable[[RunDir, Recipe], dict[str, str]]  # after its steps: its artifacts by name (produced.py)
    # artifact name -> how a user provides it when a later stage finds it missing (default: run this stage first)
    hints: Mapping[str, str] = field(default_factory=dict)
    resume_point: Callable[[RunDir, Recipe], str | None] | None = None  # a training stage's newest checkpoint
    trains: bool = False  # a framework trains in it (ms-swift, verl): its section is rendered by engines/
    preflight: bool = False  # validate and rehearse check it before launch (merge and eval run our own code)
    node_options: bool = False  # takes `run --nodes/--node-rank/...` (torchrun's rendezvous, engines.torchrun.with_nodes)
    # what its steps read, fingerprinted into its record so a resume notices a change the plan digest cannot see
    sources: Callable[[Recipe, dict[str, str]], str | None] | None = None
    section: str | None = None  # the recipe section it cannot plan without (the schema leaves sft/grpo optional)

    def hint(self, artifact: str) -> str:
        """How to provide `<name.artifact>` when a later stage needs it and this run dir has none."""
        return self.hints.get(artifact, f"run the {self.name} stage in this run dir")

    def resume_from(self, status: str | None, run: RunDir, recipe: Recipe) -> dict[str, str]:
        """A training stage that was interrupted or failed mid-training continues from its newest checkpoint."""
        if self.resume_point is not None and status in ("running", "failed", "interrupted"):
            point = self.resume_point(run, recipe)
            if point:
                return {self.name: point}
        return {}


REGISTRY: dict[str, Stage] = {stage.name: stage for stage in (
    Stage("data", data_stage, produced.collect_data, preflight=True, sources=produced.data_sources, hints={
        "eval": "set eval.dataset to an eval jsonl, or include the data stage (--stages data,...)",
        "sft": "include the data stage, or run --stages sft alone to train on the recipe's sft.dataset"}),
    Stage("sft", sft_stage, produced.collect_sft, resume_point=produced.sft_resume_point, trains=True,
          preflight=True, node_options=True, section="sft",
          hints={"checkpoint": "run the sft stage in this run dir first (same --run-dir, --resume)"}),
    Stage("grpo", grpo_stage, produced.collect_grpo, resume_point=produced.grpo_resume_point, trains=True,
          preflight=True, section="grpo",
          hints={"checkpoint": "run the grpo stage in this run dir first (same --run-dir, --resume)"}),
    Stage("merge", merge_stage, produced.collect_merge, section="grpo"),
    Stage("eval", eval_stage, produced.collect_eval),
)}

STAGES: tuple[str, ...] = tuple(REGISTRY)  # the pipeline's order
ALL = ",".join(STAGES)  # what `run --stages` takes by default
TRAINING: tuple[str, ...] = tuple(name for name, stage in REGISTRY.items() if stage.trains)
PREFLIGHT: tuple[str, ...] = tuple(name for name, stage in REGISTRY.items() if stage.preflight)
# an upstream artifact not produced yet, as Wiring.get writes it into a plan: <stage.artifact>
PLACEHOLDER = re.compile(r"<((?:" + "|".join(map(re.escape, STAGES)) + r")\.[a-z_]+)>")


def build(stage: str, wiring: Wiring, selected: tuple[str, ...]) -> StagePlan:
    return REGISTRY[stage].build(wiring, selected)


def check_sections(recipe: Recipe, selected: tuple[str, ...]) -> None:
    """A stage selected for a recipe without its section is an error naming the stages to run instead, before any
    plan is built (the default selection is every stage)."""
    from ..recipe.errors import Problem, RecipeError

    lacking = [name for name in selected if REGISTRY[name].section is not None
               and getattr(recipe.model, REGISTRY[name].section or "") is None]
    if lacking:
        keep = ",".join(name for name in selected if name not in lacking) or "(none)"
        sections = sorted({REGISTRY[name].section or "" for name in lacking})
        raise RecipeError([Problem(
            " / ".join(sections), f"no {' or '.join(sections)} section, which the selected stage"
            f"{'s' if len(lacking) > 1 else ''} {', '.join(lacking)} need{'' if len(lacking) > 1 else 's'}",
            file=str(recipe.path), hint=f"run --stages {keep}, or add the section")])


def missing_inputs(sp: StagePlan) -> list[str]:
    """The upstream artifacts a stage's steps still name as placeholders (`stage.artifact`), sorted."""
    return sorted({m for step in sp.steps for a in step.plan.argv for m in PLACEHOLDER.findall(a)})


def how_to_provide(placeholder: str) -> str:
    """What a user does when `placeholder` (`stage.artifact`) is missing from the run dir."""
    stage, _, artifact = placeholder.partition(".")
    return REGISTRY[stage].hint(artifact)
