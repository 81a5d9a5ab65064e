"""Run the stages of a recipe in order through the launcher, recording everything in the run dir.

Resume: a stage marked done whose artifacts still match their digests is skipped; the first other stage is run
again, with the framework's own resume option when it left a checkpoint (ms-swift --resume_from_checkpoint; verl
trainer.resume_mode=resume_path with trainer.resume_from_path, the global_step folder verl's own
find_latest_ckpt_path picks in trainer.default_local_dir). A run dir refuses a
recipe that differs from the one it was started with, unless forced.
"""

from __future__ import annotations

import errno
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import yaml

from ..engines.versions import installed_version
from ..resources import checkout_root
from ..script_text import script_text
from . import artifacts as art
from . import lock, services
from .record import StageRecord
from .rundir import ManifestWriteError, RunDir, RunDirError, new_manifest
from .stages import REGISTRY, STAGES, StagePlan, Step, Wiring, build, check_sections, how_to_provide, missing_inputs

if TYPE_CHECKING:
    from ..launch.launcher import Launcher
    from ..recipe.load import Recipe

RESOLVED = "recipe.resolved.yaml"


class PipelineError(RunDirError):
    """A run cannot start or continue (changed recipe, not a run dir, ...): a message for the user, exit code 2."""


@dataclass
class Options:
    stages: tuple[str, ...] = STAGES
    resume: bool = False
    force: bool = False
    dry_run: bool = False
    versions: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, Any] = field(default_factory=dict)  # per-node torchrun settings for the sft stage
    echo: bool = True
    # set inside a Slurm job of that many nodes (`run --slurm`, what submit's scripts run): torchrun steps run as
    # one srun task per node, verl's trainer.nnodes is the job's node count and its driver joins the job's Ray
    slurm_nodes: int | None = None


def resolved_recipe_text(recipe: Recipe) -> str:
    data = recipe.model.model_dump(mode="json")
    header = script_text(f"Resolved from {recipe.path}" + (f" (profile {recipe.profile})" if recipe.profile else "")
                         + (f" with overrides: {' '.join(recipe.overrides)}" if recipe.overrides else ""))
    header = f"# {header}\n"
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


def _verified(record: StageRecord) -> bool:
    return not art.mismatches(record.artifacts or {})


def plan_all(recipe: Recipe, run: RunDir, opts: Options, manifest: dict[str, Any] | None = None) -> list[StagePlan]:
    """Every selected stage's plan, wired to what earlier stages produced (or will produce: placeholders)."""
    check_sections(recipe, opts.stages)
    artifacts = {s: {k: v["path"] for k, v in r.get("artifacts", {}).items()}
                 for s, r in (manifest or {}).get("stages", {}).items()}
    wiring = Wiring(recipe, run, run.path / RESOLVED, artifacts, opts.versions)
    plans = []
    for stage in opts.stages:
        sp = build(stage, wiring, opts.stages)
        if sp.passthrough:  # e.g. merge skipped: the RL checkpoint is the model eval takes
            artifacts[stage] = dict(sp.passthrough)
        plans.append(sp)
    return plans


def run_pipeline(recipe: Recipe, run: RunDir, opts: Options,
                 launch: Callable[..., int] | None = None) -> int:
    """Run (or resume) the selected stages; return the exit code of the first failure, else 0.

    Holds the run dir's lock throughout: a second runner on the same run dir stops with lock.RunDirBusy."""
    check_sections(recipe, opts.stages)
    with lock.locked(run.path) as me:
        if me.get("stale"):
            _say(opts, f"took over the lock of a run that ended without releasing it "
                       f"({lock.describe_holder(me['stale'])})")
        return _run_locked(recipe, run, opts, launch, me)


def _run_locked(recipe: Recipe, run: RunDir, opts: Options, launch: Callable[..., int] | None,
                me: dict[str, Any]) -> int:
    manifest = _open(recipe, run, opts)
    run.write(run.path / RESOLVED, resolved_recipe_text(recipe))
    # outputs of stages not selected this time (an earlier invocation on this run dir) are inputs too
    artifacts: dict[str, dict[str, str]] = {
        s: {k: v["path"] for k, v in r.get("artifacts", {}).items()}
        for s, r in manifest["stages"].items() if s not in opts.stages and r.get("status") in ("done", "skipped")}
    for stage in opts.stages:
        record = StageRecord.from_dict(manifest["stages"].setdefault(stage, {"status": "pending"}))

        def save(stage: str = stage, record: StageRecord = record) -> None:
            manifest["stages"][stage] = record.to_dict()
            run.save(manifest)

        plan_digest = _stage_digest(recipe, run, opts, manifest, stage, artifacts)
        if opts.resume and _finished(record, plan_digest, recipe):
            artifacts[stage] = {k: v["path"] for k, v in (record.artifacts or {}).items()}
            _say(opts, f"[{stage}] {record.status} earlier, outputs verified: not run again")
            continue
        if record.status != "pending" and record.plan_digest != plan_digest:
            # an earlier attempt ran another plan or on other inputs: keep its outputs, out of the way;
            # an interrupted attempt of the same plan keeps them, to resume from
            _set_aside(run, stage, record, opts)
        kind = REGISTRY[stage]
        wiring = Wiring(recipe, run, run.path / RESOLVED, artifacts, opts.versions,
                        resume_from=kind.resume_from(record.status, run, recipe) if opts.resume else {},
                        live=True, nodes=opts.slurm_nodes)
        sp = build(stage, wiring, opts.stages)
        if kind.node_options and opts.nodes:
            from ..engines.torchrun import with_nodes
            for step in sp.steps:
                step.plan = with_nodes(step.plan, **opts.nodes)
        run.write(run.plans_path(stage), sp.to_dict())
        record.mark_running(plan_digest, sp.inputs, str(run.plans_path(stage)),
                            runner={k: me[k] for k in ("pid", "host", "pid_start")})  # status checks it still lives
        save()
        if sp.skip_reason:
            _say(opts, f"[{stage}] skipped: {sp.skip_reason}")
            record.mark_skipped(sp.skip_reason, _fingerprint(sp.passthrough))
            artifacts[stage] = dict(sp.passthrough)
            save()
            continue
        missing = missing_inputs(sp)
        if missing:
            hint = "; ".join(how_to_provide(m) for m in missing)
            record.mark_failed(error=f"missing inputs {', '.join(missing)}: {hint}")
            save()
            _say(opts, f"[{stage}] cannot start: no {', '.join(missing)} in this run dir ({hint})")
            return 2
        started = time.monotonic()
        code = _run_steps(sp, recipe, run, opts, launch, record, save, started)
        if code is not None:
            return code
        exited = [f"the {name} server exited with code {e.get('exit_code')} during the stage (the reward used its "
                  f"fallback score from then on; see {e.get('log')})"
                  for name, e in (record.services or {}).items() if e.get("status") == "exited"]
        if exited:
            record.warnings = exited
        try:
            found = kind.collect(run, recipe)
        except (art.ArtifactError, OSError, ValueError) as exc:  # curves.CurvesError is a ValueError
            record.mark_failed(exit_code=0, error=str(exc))
            save()
            _say(opts, f"[{stage}] finished but its output is missing: {exc}")
            return 1
        record.mark_done(_fingerprint(found), seconds=round(time.monotonic() - started, 1))
        sources = kind.sources(recipe, found) if kind.sources else None
        if sources is not None:  # what it read, so a resume notices a replaced image
            record.sources = sources
        artifacts[stage] = found
        save()
        _say(opts, f"[{stage}] done in {record.seconds} s: " + ", ".join(f"{k}={v}" for k, v in found.items()))
    return 0


def _run_steps(sp: StagePlan, recipe: Recipe, run: RunDir, opts: Options, launch: Callable[..., int] | None,
               record: StageRecord, save: Callable[[], None], started: float) -> int | None:
    """A stage's steps in order, inside its services; None when every step exited 0, else the exit code to stop
    with (the record says how the stage ended)."""
    stage = sp.stage

    def say(text: str) -> None:
        _say(opts, f"[{stage}] {text}")

    def seconds() -> float:
        return round(time.monotonic() - started, 1)

    try:
        # services (the critic for GRPO) run around the steps and are stopped however the steps end
        with services.running(sp.services, run, record, save, say):
            for step in sp.steps:
                _say(opts, f"[{stage}] {step.name}: log {run.log(step.name)}")
                runner = launch or _launcher(step, recipe, opts)
                code = runner(step.plan, run.log(step.name), echo=opts.echo)
                if code != 0:
                    record.mark_failed(interrupted=code in (130, 143), exit_code=code, failed_step=step.name,
                                       seconds=seconds(), log=str(run.log(step.name)))
                    save()
                    _say(opts, f"[{stage}] {step.name} exited with {code}; see {run.log(step.name)}")
                    return code
    except services.ServiceFailed as exc:
        record.mark_failed(exit_code=exc.code, failed_step=exc.name, error=str(exc), seconds=seconds(),
                           log=str(run.log(exc.name)))
        save()
        _say(opts, f"[{stage}] {exc}")
        return exc.code
    except services.Interrupted as exc:
        if record.status == "running":
            record.mark_failed(interrupted=True, exit_code=exc.code, seconds=seconds())
        save()
        _say(opts, f"[{stage}] interrupted; its services were stopped")
        return exc.code
    except ManifestWriteError:
        raise
    except BaseException as exc:  # a launch refused (a launch-time variable unset, ...) or this process stopped:
        # the record must not say "running" for a stage nothing runs
        record.mark_failed(interrupted=isinstance(exc, KeyboardInterrupt), seconds=seconds(),
                           error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        save()
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            raise run.write_failed(Path(exc.filename or run.path / "logs"), exc) from None
        raise
    return None


def _launcher(step: Step, recipe: Recipe, opts: Options) -> Launcher:
    """The launcher of one step (launch.launcher.choose_launcher); tests replace it with fake frameworks."""
    from ..launch.launcher import choose_launcher

    return choose_launcher(step.plan, recipe.model.cluster, slurm_nodes=opts.slurm_nodes)


def _stage_digest(recipe: Recipe, run: RunDir, opts: Options, manifest: dict[str, Any], stage: str,
                  artifacts: dict[str, dict[str, str]]) -> str:
    unchanged = Wiring(recipe, run, run.path / RESOLVED, artifacts, opts.versions, live=True)
    upstream = {s: r.get("artifacts", {}) for s, r in manifest["stages"].items()
                if STAGES.index(s) < STAGES.index(stage)}
    return _plan_digest(build(stage, unchanged, opts.stages), upstream)


def _finished(record: StageRecord, plan_digest: str, recipe: Recipe | None = None) -> bool:
    """What `--resume` skips: done (or skipped), outputs still as recorded, and the same plan on the same inputs
    (for the data stage: the same sources and images, data/fingerprint.py)."""
    return record.finished and _verified(record) and record.plan_digest == plan_digest \
        and _sources_unchanged(record, recipe)


def _sources_unchanged(record: StageRecord, recipe: Recipe | None) -> bool:
    recorded = record.sources
    manifest = (record.artifacts or {}).get("manifest", {}).get("path")
    if recorded is None or recipe is None or manifest is None:
        return True
    from ..data.fingerprint import stage_sources_fingerprint
    try:
        return stage_sources_fingerprint(recipe.model, Path(manifest).parent) == recorded
    except (OSError, ValueError):
        return False


def finished_stages(recipe: Recipe, run: RunDir, opts: Options) -> list[str]:
    """The leading stages of `opts.stages` that `run --resume` would not run again; the first one it would run, and
    every stage after it, are what is left. Reads the manifest, writes nothing (what `submit --resume` asks)."""
    if not run.exists():
        return []
    manifest = run.load()
    artifacts: dict[str, dict[str, str]] = {
        s: {k: v["path"] for k, v in r.get("artifacts", {}).items()}
        for s, r in manifest["stages"].items() if s not in opts.stages and r.get("status") in ("done", "skipped")}
    done = []
    for stage in opts.stages:
        record = StageRecord.from_dict(manifest["stages"].get(stage, {"status": "pending"}))
        if not _finished(record, _stage_digest(recipe, run, opts, manifest, stage, artifacts), recipe):
            break
        artifacts[stage] = {k: v["path"] for k, v in (record.artifacts or {}).items()}
        done.append(stage)
    return done


def check_recipe(recipe: Recipe, run: RunDir, force: bool = False) -> None:
    """Refuse a recipe that differs from the one the run in `run` was started with (unless forced)."""
    if not run.exists():
        return
    manifest = run.load()
    was, now_digest = manifest["recipe"]["digest"], recipe.digest()
    if was != now_digest and not force:
        raise PipelineError(
            f"the recipe changed since this run started (digest {was} -> {now_digest}; it was "
            f"{manifest['recipe']['path']} profile={manifest['recipe']['profile']} "
            f"overrides={manifest['recipe']['overrides']}); resume with the same recipe, or pass --force")


def _plan_digest(sp: StagePlan, upstream: dict[str, Any]) -> str:
    """What the stage would run (before any resume option) and the content of what it consumes: if either changed,
    the stage must run again."""
    blob = json.dumps([sp.to_dict(), upstream], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _fingerprint(found: dict[str, str]) -> dict[str, dict[str, str]]:
    out = {}
    for name, path in found.items():
        try:
            out[name] = {"path": path, "sha256": art.digest(path)}
        except art.ArtifactError:
            out[name] = {"path": path, "sha256": ""}
    return out


def _set_aside(run: RunDir, stage: str, record: StageRecord, opts: Options) -> None:
    """Rename a superseded stage's outputs (never delete: a checkpoint may have cost days)."""
    old = run.stage_dir(stage)
    if not old.exists():
        return
    n = 1
    while (target := old.with_name(f"{stage}.superseded-{n}")).exists():
        n += 1
    old.rename(target)
    record.superseded = [*(record.superseded or []), str(target)]
    _say(opts, f"[{stage}] its inputs or plan changed: earlier outputs moved to {target}")


def _open(recipe: Recipe, run: RunDir, opts: Options) -> dict[str, Any]:
    versions = {fw: installed_version(fw) for fw in ("swift", "verl")}
    if run.exists():
        manifest = run.load()
        if not opts.resume:
            raise PipelineError(f"{run.path} already holds a run; continue it with --resume, or choose another "
                                f"--run-dir")
        check_recipe(recipe, run, opts.force)
        was, now_digest = manifest["recipe"]["digest"], recipe.digest()
        if was != now_digest:  # forced: the manifest names the recipe recipe.resolved.yaml now holds
            manifest["recipe"].update(digest=now_digest, forced_from=was, overrides=list(recipe.overrides),
                                      path=str(Path(recipe.path).resolve()), profile=recipe.profile)
        manifest["versions"] = versions
        for stage in opts.stages:
            manifest["stages"].setdefault(stage, {"status": "pending"})
        run.save(manifest)  # before recipe.resolved.yaml is rewritten: the two never disagree for long
        return manifest
    run.path.mkdir(parents=True, exist_ok=True)
    manifest = new_manifest(recipe, list(opts.stages), versions, checkout_root())
    run.save(manifest)
    return manifest


def _say(opts: Options, text: str) -> None:
    if opts.echo:
        print(f"fakehr-orchestra: {text}", flush=True)
