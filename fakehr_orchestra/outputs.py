"""The one output-path guard: where a command may write, and what it may remove.

- An output is never one of the command's inputs (`--out x.jsonl` for the file being read would replace it before
  or while it is read): `refuse_input_as_output` compares real paths, so `./x`, `a/../x` and symlinks count too.
- What we remove we created: an atomic write's temp name (`.<target>.<random>.tmp`, io.atomic_open) only for the
  targets this command writes (`is_our_temp`), and a folder only when it holds our marker (`owns_folder`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, Mapping

# tempfile.mkstemp's random part: 8 characters of [a-z0-9_]
_TEMP = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp$")


class OutputPathError(ValueError):
    """An output path that would overwrite an input, or a folder this program did not make."""


def _real(path: str | Path) -> str:
    return os.path.realpath(os.path.abspath(os.path.expanduser(str(path))))


def refuse_input_as_output(outputs: Mapping[str, str | Path], inputs: Mapping[str, str | Path]) -> None:
    """Raise OutputPathError naming both when an output is (resolves to) an input, or is an existing folder (a file
    cannot be written there). `outputs` / `inputs`: what the user calls them (`--out`, `source eval`) -> path."""
    folders = [f"{name} ({out}) is a folder" for name, out in outputs.items() if Path(out).is_dir()]
    if folders:
        raise OutputPathError("; ".join(folders) + ": give a file path")
    real_inputs = {_real(p): name for name, p in inputs.items()}
    clashes = [f"{out_name} ({out}) is {real_inputs[_real(out)]}" for out_name, out in outputs.items()
               if _real(out) in real_inputs]
    clashes += [f"{out_name} ({out}) is {in_name} (a hard link to it)" for out_name, out in outputs.items()
                for in_name, p in inputs.items() if _real(out) not in real_inputs and _same_file(out, p)]
    if clashes:
        raise OutputPathError("an output would overwrite an input: " + "; ".join(clashes)
                              + ": write the output somewhere else")


def _same_file(a: str | Path, b: str | Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def is_our_temp(path: Path, targets: Iterable[str]) -> bool:
    """Whether `path` is a temp file io.atomic_open made for one of `targets` (file names) and a crash left behind."""
    match = _TEMP.match(path.name)
    return bool(match) and match.group("target") in set(targets) and path.is_file() and not path.is_symlink()


def owns_folder(folder: Path, marker: str) -> bool:
    """Whether `folder` holds the marker file this program writes into the folders it makes."""
    return folder.is_dir() and not folder.is_symlink() and (folder / marker).is_file()
