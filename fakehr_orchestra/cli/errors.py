"""The one error wrapper every verb runs behind: an error the user can fix is a message and an
exit code, never a traceback.

Exit codes: 1 — the data or a validation is wrong (a `DataError`, as a failed `validate` exits 1); 2 — the input
cannot be used as given (recipe, eval or predictions file, jsonl, render). Verbs may still catch their own errors
first (and add a hint); this is the net under all of them.

Classes are matched only when their module is already imported: an exception cannot be an instance of a class
that was never loaded, so the wrapper costs no import (the CLI must start fast).
"""

from __future__ import annotations

import sys
from typing import Any, Optional

# (module, class name, exit code)
KNOWN: tuple[tuple[str, str, int], ...] = (
    ("fakehr_orchestra.data", "DataError", 1),
    ("fakehr_orchestra.recipe.errors", "RecipeError", 2),
    ("fakehr_orchestra.engines", "RenderError", 2),
    ("fakehr_orchestra.engines.plan", "MissingEnvError", 2),
    ("fakehr_orchestra.jsonl", "JsonlError", 2),
    ("fakehr_orchestra.evaluation.reader", "EvalDataError", 2),
    ("fakehr_orchestra.evaluation.infer", "ResumeError", 2),
    ("fakehr_orchestra.evaluation.infer.settings", "SettingsError", 2),
    ("fakehr_orchestra.pipeline.sweep", "SweepError", 2),
    ("fakehr_orchestra.estimate.models", "ModelError", 2),
    ("fakehr_orchestra.labels", "LabelError", 2),
    ("fakehr_orchestra.outputs", "OutputPathError", 2),
    ("fakehr_orchestra.bounded", "BoundedReadError", 2),
)
# The environment refused a write or a read (a read-only file system, a full disk, no permission): exit 1, the
# file named; not a bug, not the input's fault.
ENVIRONMENT_ERRNOS = {"EROFS", "ENOSPC", "EDQUOT", "EACCES", "EPERM", "ENAMETOOLONG", "ELOOP", "EISDIR", "ENOTDIR"}


def known_exit(exc: BaseException) -> Optional[tuple[int, str]]:
    """(exit code, message) for an error a user can fix; None for a bug (which keeps its traceback)."""
    for module_name, class_name, code in KNOWN:
        module = sys.modules.get(module_name)
        cls = getattr(module, class_name, None) if module is not None else None
        if cls is not None and isinstance(exc, cls):
            return code, f"error: {exc}"
    if isinstance(exc, UnicodeDecodeError):
        return 2, (f"error: a file is not UTF-8 text ({exc.reason} at byte {exc.start}); re-save it as UTF-8")
    if isinstance(exc, RecursionError):
        return 2, "error: the input is nested too deeply to read"
    if isinstance(exc, OSError) and exc.errno is not None:
        import errno

        if errno.errorcode.get(exc.errno) in ENVIRONMENT_ERRNOS:
            where = f" {exc.filename}" if exc.filename else ""
            return 1, f"error: cannot use{where}: {exc.strerror or exc}"
    return None


def run_guarded(invoke: Any, ctx: Any) -> Any:
    import click

    try:
        return invoke(ctx)
    except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised unless it is a known, user-fixable error
        known = known_exit(exc)
        if known is None:
            raise
        code, message = known
        click.echo(message, err=True)
        sys.exit(code)
