"""The model family (fakehr_orchestra/families.py) against the models on disk and the installed ms-swift's registry.

- a declared `model_family` that disagrees with a stage model's config.json is an error (the rendered
  --model_type / --template and every image count would be the wrong family's);
- no family at all (not declared, no model on disk) is an error: the image arithmetic cannot be chosen;
- each swift plan's --model_type must be a model type of the installed ms-swift's registry (MODEL_MAPPING), its
  --template one of that model type's templates (ModelMeta.candidate_templates), and the model type must claim the
  model's architecture (ModelMeta.architectures): a --template qwen2_5_vl for a Qwen3-VL model would train with the
  wrong patch size. The registry is read from ms-swift itself, once, in a child process (importing it takes
  seconds), and cached on disk keyed on the ms-swift version and the files that register models and templates.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..families import FamilyError, get, names, of_recipe, on_disk, stage_models
from .context import Context

REGISTRY_FORMAT = 1


def _swift_root() -> Path | None:
    spec = importlib.util.find_spec("swift")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _fingerprint(version: str) -> str | None:
    root = _swift_root()
    if root is None:
        return None
    digest = hashlib.sha256(f"{REGISTRY_FORMAT}|{version}".encode())
    for path in sorted(root.glob("model/**/*.py")) + sorted(root.glob("template/**/*.py")):
        st = path.stat()
        digest.update(f"{path.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def extract_registry() -> dict[str, Any]:
    """ms-swift's own model registry and template names (imports ms-swift: run in a child)."""
    from swift.model import MODEL_MAPPING
    from swift.template import TEMPLATE_MAPPING

    models = {name: {"templates": list(meta.candidate_templates), "architectures": list(meta.architectures)}
              for name, meta in MODEL_MAPPING.items()}
    return {"models": models, "templates": sorted(TEMPLATE_MAPPING)}


def registry(version: str, timeout: float = 300) -> dict[str, Any]:
    """The installed ms-swift's registry, from the cache or a child process that imports ms-swift."""
    from .swift_flags import _cache_dir

    folder, fp = _cache_dir(), _fingerprint(version)
    path = folder / f"swift-registry-{fp}.json" if folder is not None and fp is not None else None
    if path is not None and path.exists():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
    proc = subprocess.run([sys.executable, "-m", __name__], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode != 0:
        raise RuntimeError(f"reading ms-swift's model registry failed: {proc.stderr.strip()[-2000:]}")
    table = json.loads(proc.stdout.strip().splitlines()[-1])
    if path is not None:
        from ..io import write_json_atomic

        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, table)
    return table


def check_family(ctx: Context, plans: list[Any], swift_version: str | None) -> None:
    m = ctx.model
    declared = m.model_family
    found = False
    for key, model in stage_models(m):
        try:
            fam = on_disk(model, m.workdir)
        except FamilyError as exc:
            ctx.error("family", key, str(exc), "point it at a Qwen2.5-VL / Qwen3-VL model folder")
            continue
        if fam is None:
            continue
        found = True
        if declared is not None and fam.name != declared:
            want = get(declared)
            sizes = (f" and images would be sized in {want.factor} x {want.factor} tokens instead of "
                     f"{fam.factor} x {fam.factor}") if want.factor != fam.factor else ""
            ctx.error("family", "model_family", f"model_family is {declared} but {key} ({model}) is a {fam.name} "
                      f"model (its config.json): ms-swift would get --model_type {want.swift_model_type} "
                      f"--template {want.swift_template} instead of --model_type {fam.swift_model_type} "
                      f"--template {fam.swift_template}{sizes}",
                      f"set model_family: {fam.name} (or null, to read it from the model)")
    if declared is None and not found:
        ctx.error("family", "model_family", "the model family is unknown: model_family is null and no stage model "
                  "is a folder with a config.json, so the image-token arithmetic and ms-swift's --model_type / "
                  "--template cannot be chosen", f"set model_family to one of {', '.join(names())}")
    fam = of_recipe(m)
    for plan in plans:
        _check_plan_against_family(ctx, plan, fam)
    if plans and swift_version is not None:
        try:
            table = registry(swift_version)
        except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
            ctx.error("family", "model_family", f"cannot read the installed ms-swift's model registry: {exc}",
                      "check that `python -c 'import swift.model'` works")
            return
        for plan in plans:
            _check_plan_against_registry(ctx, plan, table, swift_version, fam)


def _option(plan: Any, flag: str) -> str | None:
    opts = plan.options
    return opts[opts.index(flag) + 1] if flag in opts and opts.index(flag) + 1 < len(opts) else None


def _check_plan_against_family(ctx: Context, plan: Any, fam: Any) -> None:
    if fam is None:
        return
    for flag, want in (("--model_type", fam.swift_model_type), ("--template", fam.swift_template)):
        got = _option(plan, flag)
        if got is not None and got != want:
            key = plan.origin(flag, flag[2:])
            ctx.error("family", key, f"{flag} {got} disagrees with model_family {fam.name}, whose ms-swift "
                      f"{flag[2:]} is {want}", f"remove {key} (the family renders it) or fix model_family",
                      plan.stage)


def _check_plan_against_registry(ctx: Context, plan: Any, table: dict[str, Any], version: str, fam: Any) -> None:
    model_type, template = _option(plan, "--model_type"), _option(plan, "--template")
    models = table["models"]
    if model_type is not None:
        key = plan.origin("--model_type", "model_type")
        meta = models.get(model_type)
        if meta is None:
            ctx.error("family", key, f"--model_type {model_type} is not a model type of ms-swift {version}",
                      "see `swift sft --help` (model_type choices)", plan.stage)
            return
        if template is not None and template not in meta["templates"]:
            ctx.error("family", plan.origin("--template", "template"), f"--template {template} is not a template "
                      f"ms-swift {version} registers for model type {model_type} (its: {', '.join(meta['templates'])})",
                      f"use --template {meta['templates'][0]}", plan.stage)
        if fam is not None and not set(fam.architectures) & set(meta["architectures"]):
            ctx.error("family", key, f"ms-swift {version}'s model type {model_type} is for "
                      f"{', '.join(meta['architectures'])}, not {', '.join(fam.architectures)} ({fam.name})",
                      "fix model_family / the stage's model_type", plan.stage)
    elif template is not None and template not in table["templates"]:
        ctx.error("family", plan.origin("--template", "template"),
                  f"--template {template} is not a template of ms-swift {version}", None, plan.stage)


if __name__ == "__main__":  # the child: ms-swift's registry as JSON on the last line
    import warnings

    warnings.filterwarnings("ignore")
    sys.stdout.write("\n" + json.dumps(extract_registry()) + "\n")
