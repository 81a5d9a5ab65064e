"""verl overrides against the INSTALLED verl: Hydra composition (struct mode), ignored legacy keys, verl's checks.

Composition uses hydra's compose API on the installed `verl/trainer/config/ppo_trainer.yaml`, so a key that does
not exist fails here exactly as `python -m verl.trainer.main_ppo` would fail. verl's package is located with
`importlib.util.find_spec`, which does not import it; only the batch checks import `verl.utils.config` (torch).
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.util
import io
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from ..engines.versions import legacy_replacement
from .context import PLAN_REF, Context

STAGE = "grpo"
CONFIG_NAME = "ppo_trainer"


def verl_root() -> Path | None:
    spec = importlib.util.find_spec("verl")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def config_dir() -> Path | None:
    root = verl_root()
    return root / "trainer" / "config" if root else None


# ----------------------------------------------------------------------------------------- key bookkeeping

def split_override(arg: str) -> tuple[str, str, str]:
    """'+a.b=v' -> ('+', 'a.b', 'v')."""
    key, _, value = arg.partition("=")
    prefix = key[: len(key) - len(key.lstrip("+~"))]
    return prefix, key[len(prefix):], value


def all_keys(node: Any, prefix: str = "") -> Iterable[str]:
    from omegaconf import DictConfig
    if isinstance(node, DictConfig):
        for k in node.keys():
            path = f"{prefix}.{k}" if prefix else str(k)
            yield path
            try:
                child = node.get(k)
            except Exception:  # noqa: BLE001 - an interpolation that needs a runtime: the key still exists
                continue
            yield from all_keys(child, path)


def has_key(cfg: Any, key: str) -> bool:
    """Like struct mode: does the key exist (a `???` value, e.g. rollout.name, exists but is unset)."""
    from omegaconf import DictConfig
    node = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node.keys():
            return False
        node = node._get_node(part)  # noqa: SLF001 - the raw node, without resolving `???` or interpolations
    return True


def did_you_mean(key: str, base: Any, known: list[str]) -> str | None:
    """Siblings first (a misspelt leaf), then any composed key (a misplaced one)."""
    from omegaconf import OmegaConf
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(base, parent, default=None) if parent else base
    if node is not None and hasattr(node, "keys"):
        match = difflib.get_close_matches(leaf, [str(k) for k in node.keys()], n=1, cutoff=0.6)
        if match:
            return f"{parent + '.' if parent else ''}{match[0]}"
    match = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    return match[0] if match else None


# ----------------------------------------------------------------------------------------- composition

@lru_cache(maxsize=1)
def ignored_roots() -> tuple[tuple[str, ...], str]:
    """Top-level keys the installed verl composes but main_ppo never reads, read from the installed files.

    verl 0.9 keeps `legacy_reward_impl.yaml` (custom_reward_function, reward_model, sandbox_fusion) in the defaults
    so old commands still compose, but only `migrate_legacy_reward_impl` (experimental/reward_loop) moves them into
    `reward.*`, and main_ppo does not call it. Returns (roots, why).
    """
    cdir = config_dir()
    root = verl_root()
    if cdir is None or root is None:
        return (), ""
    legacy = cdir / "legacy_reward_impl.yaml"
    trainer_yaml = (cdir / f"{CONFIG_NAME}.yaml").read_text(encoding="utf-8")
    if not legacy.exists() or "legacy_reward_impl" not in trainer_yaml:
        return (), ""
    entry_points = [p for p in (root / "trainer").glob("main_ppo*.py")]
    if any("migrate_legacy_reward_impl" in p.read_text(encoding="utf-8") for p in entry_points):
        return (), ""
    roots = tuple(line.split(":", 1)[0] for line in legacy.read_text(encoding="utf-8").splitlines()
                  if line and not line.startswith((" ", "#")) and ":" in line)
    return roots, ("verl/trainer/config/legacy_reward_impl.yaml keeps it composable, but verl/trainer/main_ppo*.py "
                   "never calls migrate_legacy_reward_impl, so nothing reads it")


class Composer:
    """hydra compose against the installed verl config, inside one initialize_config_dir context."""

    def __init__(self, cdir: Path):
        from hydra import initialize_config_dir
        from hydra.core.global_hydra import GlobalHydra
        GlobalHydra.instance().clear()
        self._ctx = initialize_config_dir(config_dir=str(cdir), version_base=None, job_name="fakehr_validate")

    def __enter__(self) -> "Composer":
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._ctx.__exit__(*exc)

    def compose(self, overrides: list[str]) -> Any:
        from hydra import compose
        return compose(config_name=CONFIG_NAME, overrides=overrides)


def hydra_message(exc: BaseException) -> str:
    parts = [str(exc).strip()]
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause).strip() and str(cause).strip() not in parts[0]:
        parts.append(str(cause).strip())
    return " / ".join(p.replace("\n", " ").replace("    ", " ") for p in parts if p)


def literal(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return repr(value) if isinstance(value, (int, float)) else str(value)


def check_verl_plan(ctx: Context, plan: Any) -> Any:
    """Compose the plan's overrides; report unknown, mistyped and ignored keys, and paths left at verl's examples.
    Returns the composed config or None."""
    from ..numbers import option_problems

    pairs = [split_override(arg)[1:] for arg in plan.options]
    for key, problem in option_problems([(k, v) for k, v in pairs if not k.startswith(HYDRA)]):
        ctx.error("verl", plan.origin(key, f"grpo.overrides.{key}"), f"{key}: {problem}", None, STAGE)
    config = _compose_plan(ctx, plan)
    if config is not None:
        check_example_paths(ctx, plan, config)
    return config


# The run reads these paths; verl's defaults for them are example paths from its docs (~/data/rlhf/gsm8k/...,
# ~/models/deepseek-llm-7b-chat). Left unset, the run dies at start-up, or on a machine that has the example files,
# trains or validates on GSM8K with our reward.
READ_PATHS = {
    "data.train_files": ("grpo.train_files", None),
    "data.val_files": ("grpo.val_files", None),
    "actor_rollout_ref.model.path": ("grpo.model", None),
    "critic.model.path": ("grpo.overrides.critic.model.path", "critic"),
}


def check_example_paths(ctx: Context, plan: Any, config: Any) -> None:
    """Error for every path the run reads that is still verl's example default (`~/...` in verl's own config)."""
    from omegaconf import OmegaConf

    critic = config.critic.get("enable", None)
    uses = {"critic": bool(critic) if critic is not None else config.algorithm.adv_estimator == "gae"}
    for key, (rkey, needs) in READ_PATHS.items():
        if needs and not uses[needs]:
            continue
        value = OmegaConf.select(config, key, default=None, throw_on_missing=False)
        values = value if isinstance(value, (list, tuple)) or OmegaConf.is_list(value) else [value]
        if key in plan.origins or not any(isinstance(v, str) and v.startswith("~/") for v in values):
            continue
        ctx.error("verl", rkey, f"{key} is left at verl's example default {value!r} (verl "
                  f"{ctx.report.versions.get('verl')}'s config); main_ppo reads it at start-up",
                  f"set {rkey} (the pipeline passes the data stage's grpo_val.parquet)" if key == "data.val_files"
                  else f"set {rkey}", STAGE)


HYDRA = "hydra."  # keys of hydra's own config, which compose accepts and verl never sees


def _compose_plan(ctx: Context, plan: Any) -> Any:
    cdir = config_dir()
    version = ctx.report.versions.get("verl")
    if cdir is None:
        ctx.error("verl", "grpo.engine", "verl is not installed, so its config cannot be checked",
                  "pip install verl (the train extra), or set grpo.engine=swift", STAGE)
        return None
    args = plan.options
    with Composer(cdir) as composer:
        # The defaults are needed only to stand in for launch-time refs or to explain a failed composition.
        has_refs = any(PLAN_REF.search(a) for a in args)
        base = composer.compose([]) if has_refs else None
        prepared = []
        for arg in args:
            prefix, key, value = split_override(arg)
            rkey = plan.origin(key, f"grpo.overrides.{key}")
            prepared.append((prefix, key, fill_refs(ctx, rkey, key, value, base), rkey))
        if base is None:
            try:  # the common case, a recipe that composes: one composition
                config = composer.compose([f"{p}{k}={v}" for p, k, v, _ in prepared])
                ignored: dict[str, list[tuple[str, str, Any]]] = {}
                for _, key, value, rkey in prepared:
                    if not key.startswith(HYDRA):
                        check_ignored(ctx, ignored, rkey, key, value, version)
                report_ignored(ctx, ignored, version)
                return config
            except Exception:  # noqa: BLE001 - explained key by key below
                base = composer.compose([])
        return _explain(ctx, composer, base, prepared, version)


def _explain(ctx: Context, composer: Composer, base: Any, prepared: list[tuple[str, str, str, str]],
             version: str | None) -> Any:
    """Every unknown key (with Hydra's own words and a did-you-mean), every rejected value, ignored keys."""
    known = list(all_keys(base))
    usable: list[str] = []
    ignored: dict[str, list[tuple[str, str, Any]]] = {}
    for prefix, key, value, rkey in prepared:
        if key.startswith(HYDRA):  # hydra's own settings (hydra.run.dir): composed below, not verl's config
            usable.append(f"{prefix}{key}={value}")
            continue
        if "~" not in prefix and "+" not in prefix and not has_key(base, key):
            guess = did_you_mean(key, base, known)
            try:
                composer.compose([f"{key}={value}"])
                said = ""
            except Exception as exc:  # noqa: BLE001 - whatever hydra raises is the message verl would print
                said = f" (Hydra: {hydra_message(exc)})"
            ctx.error("verl", rkey, f"verl {version} has no config key '{key}'; main_ppo would stop at "
                      f"startup{said}",
                      f"did you mean '{guess}'?" if guess else "check the key against "
                      f"verl/trainer/config/_generated_ppo_trainer.yaml, or write +{key} to add a new key",
                      STAGE)
            continue
        check_ignored(ctx, ignored, rkey, key, value, version)
        usable.append(f"{prefix}{key}={value}")
    report_ignored(ctx, ignored, version)
    for _ in range(len(usable) + 1):
        try:
            return composer.compose(usable)
        except Exception as exc:  # noqa: BLE001
            message = hydra_message(exc)
            culprit = next((u for u in usable if split_override(u)[1] in message), None)
            if culprit is None:
                ctx.error("verl", "grpo.overrides", f"verl {version} rejects the overrides: {message}",
                          None, STAGE)
                return None
            rkey = next(r for p, k, v, r in prepared if f"{p}{k}={v}" == culprit)
            ctx.error("verl", rkey,
                      f"verl {version} rejects '{culprit}': {message}", "fix the value's type, or the key", STAGE)
            usable.remove(culprit)
    return None


def fill_refs(ctx: Context, rkey: str, key: str, value: str, base: Any) -> str:
    """Launch-time refs (${WORLD_SIZE}) cannot be known now: use the launch env if given, else a stand-in, and say so."""
    from omegaconf import OmegaConf
    refs = PLAN_REF.findall(value)
    if not refs:
        return value
    value = PLAN_REF.sub(lambda m: ctx.environ.get(m.group(1), m.group(0)), value)
    missing = PLAN_REF.findall(value)
    if not missing:
        return value
    default = OmegaConf.select(base, key, default=None, throw_on_missing=False) if base is not None else None
    if PLAN_REF.fullmatch(value) and isinstance(default, (int, float)) and not isinstance(default, bool):
        stand_in = literal(default)
    else:
        stand_in = PLAN_REF.sub(lambda m: f"LAUNCH_{m.group(1)}", value)
    ctx.warning("verl", rkey, f"'{key}' takes ${{{', '.join(missing)}}} from the environment at launch; "
                f"checked with the stand-in {stand_in!r}", "validate again at launch (run/submit do)", STAGE)
    return stand_in


def check_ignored(ctx: Context, ignored: dict[str, list[tuple[str, str, Any]]], rkey: str, key: str, value: str,
                  version: str | None) -> None:
    """Keys that compose but that the installed verl never reads: the run would quietly do something else."""
    entry = legacy_replacement("verl", "key", key, version) if version else None
    roots, _ = ignored_roots()
    root = key.split(".", 1)[0]
    if (entry is None and root not in roots) or value in ("null", "None", ""):
        return
    ignored.setdefault(entry.old if entry else root, []).append((rkey, key, entry))


def report_ignored(ctx: Context, ignored: dict[str, list[tuple[str, str, Any]]], version: str | None) -> None:
    """One error per legacy key group (a reward's five kwargs are one mistake, not five)."""
    _, why = ignored_roots()
    for old, items in ignored.items():
        rkey, key, entry = items[0]
        keys = [k for _, k, _ in items]
        reason = entry.why if entry else why
        consequence = " so the run would train with verl's default reward" \
            if old.split(".")[0] in ("custom_reward_function", "reward_model") else ""
        shown = ", ".join(f"'{k}'" for k in keys[:4]) + (f" (+{len(keys) - 4} more)" if len(keys) > 4 else "")
        if entry:
            fix = f"use '{entry.new}{key[len(entry.old):]}' (render without --no-translate does this)"
        else:
            fix = "move it under reward.* (see verl/trainer/config/reward/reward.yaml)"
        ctx.error("verl", rkey, f"{shown} compose{'s' if len(keys) == 1 else ''} in verl {version} but "
                  f"{'is' if len(keys) == 1 else 'are'} ignored: {reason};{consequence}", fix, STAGE)


# ----------------------------------------------------------------------------------------- verl's own checks

def verl_validate_in_process(config: Any, use_ref: bool, use_critic: bool) -> str | None:
    """verl.utils.config.validate_config on `config`; its message when it fails, None when it passes."""
    from verl.utils.config import validate_config
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            validate_config(config=config, use_reference_policy=use_ref, use_critic=use_critic)
    except Exception as exc:  # noqa: BLE001 - verl raises AssertionError / ValueError with its own words
        return str(exc).strip() or type(exc).__name__
    return None


class VerlValidator:
    """verl's own validate_config in a child process started early: importing verl (torch, tensordict,
    transformers) takes seconds and overlaps with the composition and the other checks in this process.
    When verl is already imported here (a long-lived caller such as the test suite), it runs in-process."""

    def __init__(self) -> None:
        import subprocess
        import sys
        self.proc = None
        if "verl.utils.config" not in sys.modules:
            self.proc = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def run(self, config: Any, use_ref: bool, use_critic: bool) -> str | None:
        import json

        from omegaconf import OmegaConf
        if self.proc is None:
            return verl_validate_in_process(config, use_ref, use_critic)
        payload = {"config": OmegaConf.to_container(config, resolve=False), "use_ref": use_ref,
                   "use_critic": use_critic}
        out, err = self.proc.communicate(json.dumps(payload), timeout=300)
        if self.proc.returncode != 0:
            raise RuntimeError(f"verl's validate_config could not run: {err.strip()[-1500:]}")
        return json.loads(out.strip().splitlines()[-1])["message"]

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run_verl_validate(ctx: Context, plan: Any, config: Any, refs_in_sizes: bool,
                      validator: VerlValidator | None = None) -> None:
    """verl.utils.config.validate_config, exactly what main_ppo.main() runs first (it stops at the first problem)."""
    cfg = config
    # verl/trainer/ppo/utils.py: need_reference_policy / need_critic (not imported: that module pulls in Ray)
    use_ref = bool(cfg.algorithm.get("use_kl_in_reward", False) or cfg.actor_rollout_ref.actor.use_kl_loss)
    critic = cfg.critic.get("enable", None)
    use_critic = bool(critic) if critic is not None else cfg.algorithm.adv_estimator == "gae"
    try:
        message = (validator or VerlValidator()).run(cfg, use_ref, use_critic)
    except Exception as exc:  # noqa: BLE001
        ctx.warning("batch", "grpo.overrides", f"verl's own validate_config could not run ({exc}); only the "
                    "equivalent checks ran", None, STAGE)
        return
    if message is None or any(message in f.message for f in ctx.report.findings):
        return
    key = guess_key(plan, message)
    level = "warning" if refs_in_sizes else "error"
    ctx.add(level, "batch", key, f"verl's validate_config (verl/utils/config.py, run by main_ppo before "
            f"anything starts) fails: {message}", "change the batch sizes / GPU counts it names", STAGE)


def guess_key(plan: Any, message: str) -> str:
    """The recipe key behind the longest rendered key leaf that verl's message names."""
    best = None
    for rendered, rkey in plan.origins.items():
        leaf = rendered.rsplit(".", 1)[-1]
        if leaf in message and rkey.startswith("grpo.overrides") and (best is None or len(leaf) > best[0]):
            best = (len(leaf), rkey)
    return best[1] if best else "grpo.overrides"


if __name__ == "__main__":  # VerlValidator's child: import verl first, then read the config from stdin
    import json
    import sys
    import warnings
    warnings.filterwarnings("ignore")
    import verl.utils.config  # noqa: F401 - the slow part, done while the parent composes
    from omegaconf import OmegaConf
    request = json.loads(sys.stdin.read())
    result = verl_validate_in_process(OmegaConf.create(request["config"]), request["use_ref"], request["use_critic"])
    sys.stdout.write("\n" + json.dumps({"message": result}) + "\n")
