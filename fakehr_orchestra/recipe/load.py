"""Turn a recipe file (+ extends, profile, command-line overrides) into one resolved, schema-checked recipe.

Order of layers, later wins: the `extends` chain (base first), the recipe itself, the profile, the overrides.
Overrides are Hydra-like: `a.b=v` sets an existing key, `+a.b=v` adds a new one, `~a.b` removes one.
`${a.b}` refers to another recipe value (resolved here); `${env:NAME}` is left for launch time, where the
node's environment supplies it (e.g. WORLD_SIZE on a cluster that injects it).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ..refs import ENV_PREFIX, RECIPE_REF, SHIPPED_PREFIX
from .errors import Problem, RecipeError, closest, did_you_mean
from .yaml_source import KeyPath, Positions, dotted, locate, parse_scalar, read_yaml  # noqa: F401 - locate re-exported

if TYPE_CHECKING:  # pydantic stays off this module's import path; the type checker still sees the schema
    from .schema.recipe import RecipeModel

MAX_EXTENDS_DEPTH = 16


@dataclass
class Recipe:
    """A resolved recipe: the validated model, the plain data it came from, and where each key was written."""

    path: Path
    model: RecipeModel
    data: dict[str, Any]
    positions: Positions = field(default_factory=dict)
    profile: str | None = None
    overrides: tuple[str, ...] = ()

    def digest(self) -> str:
        """Content hash of the validated recipe (every value as the schema resolved it, defaults included): a resume
        refuses to continue under a different one, and accepts the same recipe however it was written (e.g. the run
        dir's own recipe.resolved.yaml, which is this model dumped)."""
        blob = json.dumps(self.model.model_dump(mode="json"), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def where(self, key: str) -> tuple[str | None, int | None]:
        return locate(self.positions, key, str(self.path))

    def with_section(self, section: str, **update: Any) -> "Recipe":
        """A copy with fields of one section replaced (how the pipeline wires an upstream artifact into a stage);
        the recipe's own data and digest are unchanged."""
        import dataclasses

        model = self.model
        new_section = getattr(model, section).model_copy(update=update)
        return dataclasses.replace(self, model=model.model_copy(update={section: new_section}))


# ---------------------------------------------------------------------------------------------- layers

def _load_with_extends(path: Path, seen: tuple[Path, ...] = ()) -> tuple[dict[str, Any], Positions]:
    path = path.resolve()
    if path in seen:
        chain = " -> ".join(str(p) for p in seen + (path,))
        raise RecipeError([Problem("extends", f"cycle in extends chain: {chain}", file=str(path))])
    if len(seen) > MAX_EXTENDS_DEPTH:
        raise RecipeError([Problem("extends", "extends chain too deep", file=str(path))])
    data, positions = read_yaml(path)
    if not isinstance(data, dict):
        raise RecipeError([Problem("", "a recipe must be a YAML mapping", file=str(path), line=1)])
    parent = data.pop("extends", None)
    if parent is None:
        return data, positions
    if not isinstance(parent, str):
        line = positions.get(("extends",), (None, None))[1]
        raise RecipeError([Problem("extends", "must be a path to another recipe", file=str(path), line=line)])
    parent_path = path.parent / parent
    shipped = RECIPE_REF.fullmatch(parent)
    if shipped and shipped.group(1).startswith(SHIPPED_PREFIX):  # a shipped base: found from any copy of a recipe
        from ..resources import ShippedFileError, shipped_file
        try:
            parent_path = shipped_file(shipped.group(1)[len(SHIPPED_PREFIX):])
        except ShippedFileError as exc:
            line = positions.get(("extends",), (None, None))[1]
            raise RecipeError([Problem("extends", str(exc), file=str(path), line=line)]) from None
    if not parent_path.exists():
        line = positions.get(("extends",), (None, None))[1]
        raise RecipeError([Problem("extends", f"extended recipe not found: {parent_path}",
                                   file=str(path), line=line)])
    base, base_pos = _load_with_extends(parent_path, seen + (path,))
    positions.pop(("extends",), None)
    return deep_merge(base, data, base_pos, positions)


def deep_merge(base: dict[str, Any], overlay: dict[str, Any], base_pos: Positions,
               overlay_pos: Positions, prefix: KeyPath = ()) -> tuple[dict[str, Any], Positions]:
    """Mappings merge key by key; anything else (lists included) is replaced whole by the overlay."""
    out = copy.deepcopy(base)
    pos = dict(base_pos)
    for key, value in overlay.items():
        here = prefix + (key,)
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key], sub = deep_merge(out[key], value, {}, overlay_pos, here)
            pos.update(sub)
        else:
            out[key] = copy.deepcopy(value)
            for p in [p for p in pos if p[: len(here)] == here]:
                del pos[p]
        for p, where in overlay_pos.items():
            if p[: len(here)] == here:
                pos[p] = where
    return out, pos


def profile_dirs(recipe_path: Path) -> list[Path]:
    """Where a named profile is looked for: profiles/ beside the recipe, then the shipped recipes/profiles/ (so a
    recipe copied out with `recipes cp` still takes `--profile smoke`)."""
    from ..resources import shipped_dir
    own = recipe_path.resolve().parent / "profiles"
    shipped = shipped_dir("recipes") / "profiles"
    return [own] if own.resolve() == shipped.resolve() else [own, shipped]


def profile_path(recipe_path: Path, profile: str, method: str | None = None) -> Path:
    """A profile is a name (profiles/NAME.yaml, see `profile_dirs`) or a path to an overlay file. A named profile
    may have a variant for one method, profiles/NAME.METHOD.yaml (e.g. demo.fakevlm_r1.yaml, which extends
    demo.yaml): `--profile NAME` on a recipe of that method takes it, so the one name does what a user expects
    for every method (validate names the file of every key it reports)."""
    as_path = Path(profile)
    if as_path.suffix in (".yaml", ".yml"):
        return as_path
    dirs = profile_dirs(recipe_path)
    names = ([f"{profile}.{method}.yaml"] if method and "." not in profile else []) + [f"{profile}.yaml"]
    return next((d / n for d in dirs for n in names if (d / n).exists()), dirs[0] / f"{profile}.yaml")


# ---------------------------------------------------------------------------------------------- overrides

def split_key(data: Any, key: str) -> list[Any] | None:
    """Resolve a dotted key against the data, matching keys that themselves contain dots (verl overrides).

    Returns the list of path parts, or None when it does not exist.
    """
    if key == "":
        return []
    if isinstance(data, dict):
        # longest existing key first, so `grpo.overrides.trainer.nnodes` finds the flat key 'trainer.nnodes'
        parts = key.split(".")
        for n in range(len(parts), 0, -1):
            head = ".".join(parts[:n])
            if head in data:
                rest = split_key(data[head], ".".join(parts[n:]))
                if rest is not None:
                    return [head] + rest
        return None
    if isinstance(data, list):
        index, _, remainder = key.partition(".")
        if index.isdigit() and int(index) < len(data):
            tail = split_key(data[int(index)], remainder)
            return None if tail is None else [int(index)] + tail
    return None


def _nearest(data: Any, key: str) -> tuple[str, list[str]]:
    """The longest existing prefix of key and the sibling names at the point where it stops matching."""
    parts = key.split(".")
    node: Any = data
    found: list[str] = []
    for i, part in enumerate(parts):
        if isinstance(node, dict):
            sub = split_key(node, ".".join(parts[i:]))
            if sub is not None:
                return ".".join(found + [str(s) for s in sub]), []
            if part in node:
                node, found = node[part], found + [part]
                continue
            return ".".join(found), [str(k) for k in node]
        return ".".join(found), []
    return ".".join(found), []


def _shown(raw: str) -> str:
    """An override as error messages show it: a value that looks like a secret is not repeated."""
    from ..secrets import looks_like_secret

    key, sep, value = raw.partition("=")
    return f"{key}=<secret, not shown>" if sep and looks_like_secret(value) else raw


def apply_overrides(data: dict[str, Any], positions: Positions, overrides: Iterable[str]) -> list[Problem]:
    """Apply what can be applied; return the problems with the rest (reported together with schema errors)."""
    problems: list[Problem] = []
    for raw in overrides:
        where = f"override '{_shown(raw)}'"
        if raw.startswith("~"):
            key, has_value, _ = raw[1:].partition("=")
            parts = split_key(data, key)
            if parts is None:
                problems.append(_missing(data, key, where))
                continue
            parent = _get(data, parts[:-1])
            del parent[parts[-1]]
            continue
        add = raw.startswith("+")
        key, eq, value_text = raw.lstrip("+").partition("=")
        if not eq or not key:
            problems.append(Problem(key or raw, "overrides look like key.path=value, +key.path=value or ~key.path",
                                    file=where))
            continue
        value = parse_scalar(value_text)
        parts = split_key(data, key)
        if parts is not None:
            if add:
                problems.append(Problem(key, "already exists; drop the '+' to change it", file=where))
                continue
            parent = _get(data, parts[:-1])
            parent[parts[-1]] = value
            positions[tuple(parts)] = (where, None)
            continue
        if not add:
            from .schema import declared
            if not declared(key.split(".")):
                problems.append(_missing(data, key, where, suggest_plus=True))
                continue
            # a schema field left to its default in the YAML: set it, creating the sections on the way
            node: Any = data
            walked: list[Any] = []
            for part in key.split(".")[:-1]:
                if not isinstance(node, dict):
                    break
                node = node.setdefault(part, {})
                walked.append(part)
            if isinstance(node, dict):
                node[key.split(".")[-1]] = value
                positions[tuple(walked + [key.split(".")[-1]])] = (where, None)
                continue
            problems.append(_missing(data, key, where, suggest_plus=True))
            continue
        # +a.b.c=v: walk existing mappings (dotted keys allowed), create the rest as one leaf key
        prefix, _ = _nearest(data, key)
        prefix_parts = split_key(data, prefix) if prefix else []
        parent = _get(data, prefix_parts or [])
        rest = key[len(prefix):].lstrip(".")
        if not isinstance(parent, dict):
            problems.append(Problem(key, f"cannot add a key under '{prefix}', which is not a mapping", file=where))
            continue
        parent[rest] = value
        positions[tuple((prefix_parts or []) + [rest])] = (where, None)
    return problems


def _missing(data: dict[str, Any], key: str, where: str, suggest_plus: bool = False) -> Problem:
    from .schema import model_at  # the schema's fields too: a section the YAML leaves to its defaults has no keys

    found, siblings = _nearest(data, key)
    parts = key.split(".")
    depth = len(found.split(".")) if found else 0
    while depth < len(parts) - 1 and model_at(tuple(parts[:depth + 1])) is not None:
        depth, siblings = depth + 1, []  # a declared section absent from the YAML: continue in the schema
    found, first = ".".join(parts[:depth]), parts[depth] if depth < len(parts) else ""
    owner = model_at(tuple(parts[:depth]))
    match = closest(first, list(dict.fromkeys(siblings + list(getattr(owner, "model_fields", {})))))
    if match:
        hint = f"did you mean '{found + '.' if found else ''}{match}'?"
    elif suggest_plus:
        hint = f"to add a new key write '+{key}=...'"
    else:
        hint = None
    return Problem(key, "no such key in the recipe", file=where, hint=hint)


def _get(data: Any, parts: list[Any]) -> Any:
    for p in parts:
        data = data[p]
    return data


# ---------------------------------------------------------------------------------------------- interpolation

def resolve_refs(data: dict[str, Any], positions: Positions, file: str) -> dict[str, Any]:
    """Replace ${a.b} with the value at a.b (recursively) and ${shipped:rewards/x.py} with that shipped file's real
    path in this installation; keep ${env:NAME} for launch time (the forms: fakehr_orchestra/refs.py)."""
    problems: list[Problem] = []

    def shipped(ref: str, path: KeyPath) -> Any:
        from ..resources import ShippedFileError, shipped_file
        try:
            return str(shipped_file(ref[len(SHIPPED_PREFIX):]))
        except ShippedFileError as exc:
            problems.append(Problem(dotted(path), str(exc), *locate(positions, dotted(path), file)))
            return None

    def lookup(ref: str, path: KeyPath, stack: tuple[str, ...]) -> Any:
        if ref.startswith(SHIPPED_PREFIX):
            return shipped(ref, path)
        if ref in stack:
            problems.append(Problem(dotted(path), f"reference cycle: {' -> '.join(stack + (ref,))}",
                                    *locate(positions, dotted(path), file)))
            return None
        parts = split_key(data, ref)
        if parts is None:
            found, siblings = _nearest(data, ref)
            rest = ref[len(found):].lstrip(".").split(".")[0]
            problems.append(Problem(dotted(path), f"${{{ref}}} refers to a key that does not exist",
                                    *locate(positions, dotted(path), file),
                                    hint=did_you_mean(rest, siblings)))
            return None
        return walk(_get(data, parts), tuple(parts), stack + (ref,))

    def walk(value: Any, path: KeyPath, stack: tuple[str, ...]) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, path + (k,), stack) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, path + (i,), stack) for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value
        whole = RECIPE_REF.fullmatch(value)
        if whole and not whole.group(1).startswith(ENV_PREFIX):
            return lookup(whole.group(1), path, stack)

        def sub(m: re.Match[str]) -> str:
            if m.group(1).startswith(ENV_PREFIX):
                return m.group(0)
            got = lookup(m.group(1), path, stack)
            return "" if got is None else str(got)
        return RECIPE_REF.sub(sub, value)

    out = walk(data, (), ())
    if problems:
        raise RecipeError(problems)
    return out


# ---------------------------------------------------------------------------------------------- entry point

def load_recipe(path: str | Path, overrides: Iterable[str] = (), profile: str | None = None) -> Recipe:
    """Load, layer, resolve and validate. Raises RecipeError listing every problem found."""
    from .schema import validate_model  # pydantic is imported only when a recipe is actually loaded

    path = Path(path)
    data, positions = _load_with_extends(path)
    if profile:
        method = data.get("method") if isinstance(data, dict) else None
        ppath = profile_path(path, profile, method if isinstance(method, str) else None)
        if not ppath.exists():
            available = sorted({p.stem for d in profile_dirs(path) for p in d.glob("*.yaml") if "." not in p.stem})
            raise RecipeError([Problem("--profile", f"profile '{profile}' not found at {ppath}",
                                       hint=did_you_mean(profile, available) or f"available: {available}")])
        overlay, overlay_pos = _load_with_extends(ppath)  # a profile may extend another (smoke_qwen3vl: smoke)
        data, positions = deep_merge(data, overlay, positions, overlay_pos)
    overrides = tuple(overrides)
    problems = apply_overrides(data, positions, overrides)
    non_finite: list[Problem] = []
    try:
        data = resolve_refs(data, positions, str(path))
        problems += _credential_problems(data, positions, str(path))
        non_finite = _non_finite_problems(data, positions, str(path))
        problems += non_finite
        model = validate_model(data, positions, str(path))
    except RecipeError as exc:  # a key already reported as not finite is not reported twice
        said = {p.key for p in non_finite}
        raise RecipeError(problems + [p for p in exc.problems if p.key not in said]) from None
    if problems:
        raise RecipeError(problems)
    model = _with_family(model, positions, str(path))
    return Recipe(path=path, model=model, data=data, positions=positions, profile=profile, overrides=overrides)


def _credential_problems(data: Any, positions: Positions, file: str) -> list[Problem]:
    """A URL with user:password@ anywhere in the recipe is refused (secrets.url_credential_problems)."""
    from ..secrets import url_credential_problems

    out = []
    for key, message in url_credential_problems(data):
        where, line = locate(positions, key, file)
        out.append(Problem(key, message, file=where, line=line))
    return out


def _non_finite_problems(data: Any, positions: Positions, file: str, key: str = "") -> list[Problem]:
    """A .inf or .nan anywhere in a recipe, free-form sections included (ms-swift args, verl overrides, reward
    kwargs): no training value means it, and it fails late, in arithmetic, or trains on nonsense."""
    import math

    if isinstance(data, dict):
        return [p for k, v in data.items()
                for p in _non_finite_problems(v, positions, file, f"{key}.{k}" if key else str(k))]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in _non_finite_problems(v, positions, file, f"{key}[{i}]")]
    if isinstance(data, float) and not math.isfinite(data):
        where, line = locate(positions, key, file)
        return [Problem(key, f"{data} is not a finite number", file=where, line=line,
                        hint="write the number itself (.inf and .nan are YAML for infinity and not-a-number)")]
    return []


def _with_family(model: Any, positions: Positions, file: str) -> Any:
    """A recipe that leaves model_family null gets the family of its first stage model found on disk (its
    config.json), so the resolved recipe says which family every stage renders for. A declared family is kept as
    written: disagreement with the model on disk is reported by validate (preflight/crosschecks.check_family)."""
    from ..families import FamilyError, on_disk, stage_models

    if model.model_family is not None:
        return model
    for key, value in stage_models(model):
        try:
            fam = on_disk(value, model.workdir)
        except FamilyError as exc:
            where, line = locate(positions, key, file)
            raise RecipeError([Problem(key, str(exc), file=where, line=line,
                                       hint="set model_family to the family the model belongs to")]) from None
        if fam is not None:
            return model.model_copy(update={"model_family": fam.name})
    return model
