"""YAML reading that remembers where every key came from (file and line), so errors can point at them.

Bounded: a recipe is a regular file of at most `MAX_BYTES` (1 MiB), UTF-8; its tree at most `MAX_DEPTH`
levels deep and `MAX_NODES` values once aliases are expanded (a "billion laughs" file is a handful of lines that
expand to billions of values). Each limit is a `RecipeError` naming the file and line, never a MemoryError or a
RecursionError. The limits are far above any real recipe (the shipped ones: < 300 values, depth < 8).
"""

from __future__ import annotations

import os
import stat
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


MAX_BYTES = 1 << 20  # a recipe is a few KB; this refuses /dev/zero, a FIFO's endless stream, a huge file (and
# bounds the time PyYAML's pure-Python parser may take: ~1-3 s for 1 MiB)
MAX_DEPTH = 64
MAX_NODES = 200_000


class _TooBig(Exception):
    def __init__(self, message: str, line: int | None):
        self.message, self.line = message, line


def read_yaml(path: Path) -> tuple[Any, Positions]:
    """Parse one YAML file into plain data plus a map key-path -> (file, line)."""
    file = str(path)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise RecipeError([Problem("", "not a regular file (a device, FIFO or folder cannot be a recipe)",
                                       file=file)])
        if info.st_size > MAX_BYTES:
            raise RecipeError([Problem("", f"{info.st_size} bytes: larger than a recipe can be ({MAX_BYTES} "
                                       "bytes at most)", file=file)])
        with open(path, "rb") as handle:  # O_NONBLOCK not needed: only regular files get here
            raw = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise RecipeError([Problem("", "file not found", file=file)]) from None
    except OSError as exc:
        raise RecipeError([Problem("", f"cannot read: {exc.strerror}", file=file)]) from None
    if len(raw) > MAX_BYTES:
        raise RecipeError([Problem("", f"larger than a recipe can be ({MAX_BYTES} bytes at most)", file=file)])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise RecipeError([Problem("", f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the recipe as UTF-8",
                                   file=file, line=line)]) from None
    return parse_yaml(text, file)


def parse_yaml(text: str, file: str) -> tuple[Any, Positions]:
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # its reader refuses control characters here already (a YAMLError)
        node = loader.get_single_node()
        positions: Positions = {}
        problems: list[Problem] = []
        budget = [MAX_NODES]
        data = _convert(loader, node, (), file, positions, problems, budget) if node is not None else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError([Problem("", f"malformed YAML: {reason}", file=file, line=line)]) from None
    except _TooBig as exc:
        raise RecipeError([Problem("", exc.message, file=file, line=exc.line)]) from None
    except RecursionError:  # PyYAML's composer recurses per nesting level, before _convert can count depth
        raise RecipeError([Problem("", f"nested too deeply (a recipe is at most {MAX_DEPTH} levels deep)",
                                   file=file)]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if problems:
        raise RecipeError(problems)
    return data, positions


def _convert(loader: yaml.SafeLoader, node: yaml.Node, path: KeyPath, file: str,
             positions: Positions, problems: list[Problem], budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooBig(f"more than {MAX_NODES} values once aliases (*name) are expanded; a recipe this large is "
                      "refused (an alias bomb?)", node.start_mark.line + 1)
    if len(path) > MAX_DEPTH:
        raise _TooBig(f"nested more than {MAX_DEPTH} levels deep", node.start_mark.line + 1)
    positions[path] = (file, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, (str, int, float, bool)):
                problems.append(Problem(dotted(path), "mapping keys must be plain scalars",
                                        file=file, line=key_node.start_mark.line + 1))
                continue
            key = str(key) if not isinstance(key, str) else key
            if key in out:
                problems.append(Problem(dotted(path + (key,)), "duplicate key", file=file,
                                        line=key_node.start_mark.line + 1))
            out[key] = _convert(loader, value_node, path + (key,), file, positions, problems, budget)
            positions[path + (key,)] = (file, key_node.start_mark.line + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(loader, item, path + (i,), file, positions, problems, budget)
                for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def parse_scalar(text: str) -> Any:
    """Parse an override's value the way YAML would read it in a recipe (1 -> int, true -> bool, [a,b] -> list)."""
    if text == "":
        return ""
    try:
        return parse_yaml(text, "<command line>")[0] if len(text) <= MAX_BYTES else text
    except RecipeError as exc:
        if any("malformed YAML" in p.message for p in exc.problems):
            return text
        raise


def locate(positions: Positions, key: str, default_file: str | None = None) -> tuple[str | None, int | None]:
    """Best-known file:line for a dotted key (falls back to the nearest parent that has a position)."""
    by_display = {dotted(k): v for k, v in positions.items()}
    probe = key
    while probe:
        if probe in by_display:
            return by_display[probe]
        probe = probe.rsplit(".", 1)[0] if "." in probe else ""
    return default_file, None
