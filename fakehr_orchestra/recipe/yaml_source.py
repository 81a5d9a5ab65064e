"""YAML reading that remembers where every key came from (file and line), so errors can point at them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import Problem, RecipeError

KeyPath = tuple[Any, ...]
Positions = dict[KeyPath, tuple[str, "int | None"]]


def dotted(path: KeyPath) -> str:
    """Display form of a key path: sft.args.train_type, data.sources[0].path."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def read_yaml(path: Path) -> tuple[Any, Positions]:
    """Parse one YAML file into plain data plus a map key-path -> (file, line)."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError([Problem("", "file not found", file=file)]) from None
    except OSError as exc:
        raise RecipeError([Problem("", f"cannot read: {exc.strerror}", file=file)]) from None
    return parse_yaml(text, file)


def parse_yaml(text: str, file: str) -> tuple[Any, Positions]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        positions: Positions = {}
        problems: list[Problem] = []
        data = _convert(loader, node, (), file, positions, problems) if node is not None else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError([Problem("", f"malformed YAML: {reason}", file=file, line=line)]) from None
    finally:
        loader.dispose()
    if problems:
        raise RecipeError(problems)
    return data, positions


def _convert(loader: yaml.SafeLoader, node: yaml.Node, path: KeyPath, file: str,
             positions: Positions, problems: list[Problem]) -> Any:
    positions[path] = (file, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)):
                problems.append(Problem(dotted(path), "mapping keys must be plain scalars",
                                        file=file, line=key_node.start_mark.line + 1))
                continue
            key = str(key) if not isinstance(key, str) else key
            if key in out:
                problems.append(Problem(dotted(path + (key,)), "duplicate key", file=file,
                                        line=key_node.start_mark.line + 1))
            out[key] = _convert(loader, value_node, path + (key,), file, positions, problems)
            positions[path + (key,)] = (file, key_node.start_mark.line + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(loader, item, path + (i,), file, positions, problems)
                for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def parse_scalar(text: str) -> Any:
    """Parse an override's value the way YAML would read it in a recipe (1 -> int, true -> bool, [a,b] -> list)."""
    if text == "":
        return ""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def locate(positions: Positions, key: str, default_file: str | None = None) -> tuple[str | None, int | None]:
    """Best-known file:line for a dotted key (falls back to the nearest parent that has a position)."""
    by_display = {dotted(k): v for k, v in positions.items()}
    probe = key
    while probe:
        if probe in by_display:
            return by_display[probe]
        probe = probe.rsplit(".", 1)[0] if "." in probe else ""
    return default_file, None
