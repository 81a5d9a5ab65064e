"""The one loader of plugin files (reward functions, the ms-swift ORM adapter, rewards' shared helpers).

verl and ms-swift load plugins by file path, not as package imports; so do we (preflight, `reward score`, the
critic probe, the plugins' own siblings). One `sys.modules` policy for all of them:

- a file is registered under one name derived from its real path (`fakehr_plugin_<stem>_<hash>`), *before* its code
  runs (dataclasses, `typing.get_type_hints` and pickling look the module up by name while it executes);
- a file already loaded, and unchanged since (mtime and size), is the same module: its top-level code runs once per
  process, and two plugins sharing a sibling (rewards/_shared.py) share its state;
- a file that fails to import leaves `sys.modules` as it found it and raises `PluginLoadError` (typed, so a CLI can
  print it without a traceback; the cause is chained).
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

_STAMP = "__fakehr_plugin_stamp__"


class PluginLoadError(ImportError):
    """A plugin file is missing, cannot be imported, or lacks the function asked for."""

    def __init__(self, path: str | Path, message: str) -> None:
        super().__init__(f"plugin {path}: {message}")
        self.path = str(path)
        self.reason = message


def real_path(path: str | Path) -> Path:
    """The file a path names, relative paths taken from the current directory (as verl and ms-swift do)."""
    file = Path(path).expanduser()
    return (file if file.is_absolute() else Path.cwd() / file).resolve()


def module_name(file: Path) -> str:
    digest = hashlib.sha1(str(file).encode()).hexdigest()[:10]
    stem = "".join(c if c.isalnum() else "_" for c in file.stem)
    return f"fakehr_plugin_{stem}_{digest}"


def load_plugin_file(path: str | Path) -> ModuleType:
    """Load (or reuse) the module of a plugin file; see the module docstring for the policy."""
    file = real_path(path)
    if not file.is_file():
        raise PluginLoadError(path, f"no such file (looked at {file})")
    stat = file.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    name = module_name(file)
    known = sys.modules.get(name)
    if known is not None and getattr(known, _STAMP, None) == stamp:
        return known
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise PluginLoadError(path, "cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    setattr(module, _STAMP, stamp)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        if known is not None:
            sys.modules[name] = known
        else:
            sys.modules.pop(name, None)
        if isinstance(exc, (Exception, SystemExit)):  # a plugin may raise anything on import, even SystemExit
            raise PluginLoadError(path, f"fails to import: {type(exc).__name__}: {exc}") from exc
        raise  # KeyboardInterrupt and the like stay what they are
    return module


def load_plugin_function(path: str | Path, name: str) -> Callable[..., Any]:
    """`name` from a plugin file; PluginLoadError naming the public functions it does have when absent."""
    module = load_plugin_file(path)
    fn = getattr(module, name, None)
    if not callable(fn):
        public = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                        and getattr(v, "__module__", None) == module.__name__)
        raise PluginLoadError(path, f"has no function {name!r}" + (f" (it has: {', '.join(public)})" if public else ""))
    return fn
