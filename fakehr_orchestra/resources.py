"""Where the shipped recipes, reward plugins and launch templates are, as real paths on disk.

The top-level `recipes/`, `rewards/` and `launch/` folders of the checkout are the project's design; an installed
wheel carries them as package data under `fakehr_orchestra/shipped/` (setup.py + pyproject's package-dir). This is
the one place that knows both: everything else asks here (no `parents[2]` lookups). verl and ms-swift load plugins
by file path, so a path handed to them must exist: `importlib.resources.as_file` gives one even from a zipped
install, kept for the life of the process.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
from importlib import resources
from pathlib import Path

FOLDERS = ("recipes", "rewards", "launch")
_KEEP = contextlib.ExitStack()
atexit.register(_KEEP.close)


class ShippedFileError(FileNotFoundError):
    """A shipped file that is not in this installation (a typo in `${shipped:...}`, or a broken install)."""


def checkout_root() -> Path | None:
    """The source checkout this package runs from (its git revision goes into run manifests), or None when installed."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() and (root / "recipes").is_dir() else None


@functools.lru_cache(maxsize=None)
def shipped_dir(folder: str) -> Path:
    """The real directory of a shipped folder: package data when installed, else the checkout's top-level folder."""
    if folder not in FOLDERS:
        raise ValueError(f"unknown shipped folder {folder!r} (one of {', '.join(FOLDERS)})")
    data = resources.files("fakehr_orchestra.shipped").joinpath(folder)
    if data.is_dir():
        return Path(_KEEP.enter_context(resources.as_file(data))).resolve()
    root = checkout_root()
    if root is None:
        raise ShippedFileError(f"this installation of fakehr-orchestra has no {folder}/ folder (reinstall it)")
    return root / folder


def shipped_file(relpath: str) -> Path:
    """`rewards/fake_hr1.py` -> the real path of that shipped file; a clear error naming what exists if absent."""
    folder, _, rest = relpath.strip("/").partition("/")
    if folder not in FOLDERS or not rest:
        raise ShippedFileError(f"{relpath!r} is not a shipped file: it must start with one of "
                               f"{', '.join(f + '/' for f in FOLDERS)}")
    path = shipped_dir(folder) / rest
    if not path.resolve().is_relative_to(shipped_dir(folder).resolve()):
        raise ShippedFileError(f"{relpath!r} leaves the shipped {folder}/ folder (no '..' or links out of it)")
    if not path.is_file():
        present = sorted(p.relative_to(shipped_dir(folder)).as_posix() for p in shipped_dir(folder).rglob("*")
                         if p.is_file() and "__pycache__" not in p.parts and p.name != "__init__.py")
        raise ShippedFileError(f"no shipped file {relpath!r}; {folder}/ has: {', '.join(present)}")
    return path


def recipe_files() -> list[Path]:
    """The shipped recipes users run (recipes/*.yaml; bases whose name starts with '_' are not methods)."""
    return sorted(p for p in shipped_dir("recipes").glob("*.yaml") if not p.name.startswith("_"))


def profile_files() -> list[Path]:
    return sorted((shipped_dir("recipes") / "profiles").glob("*.yaml"))
