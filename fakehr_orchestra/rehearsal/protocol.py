"""How a rehearsal child reports its steps to the parent: one marked JSON line per event on stdout.

A child (the verl or ms-swift side of a rehearsal) runs the frameworks' own start-up code step by step. Before a
step starts it announces it (with the recipe key it is about and its timeout), so that the parent, which enforces
the timeouts, can name the step and the key when a framework call hangs. Everything else the frameworks print goes
to the child's stderr (a log file), never into this channel.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional

MARK = "@@fakehr-step "
STATUSES = ("ok", "failed", "skipped")


@dataclass
class StepResult:
    """One step of a rehearsal: what ran, how it ended, and for a failure the recipe key and the fix."""

    stage: str
    step: str
    status: str  # ok | failed | skipped
    detail: str = ""
    key: Optional[str] = None
    fix: Optional[str] = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        took = f" ({self.seconds:.1f} s)" if self.seconds >= 0.05 else ""
        return f"[{self.stage}] {self.step}: {self.status}{took}" + (f": {self.detail}" if self.detail else "")


class StepFailed(Exception):
    """A step found a problem; `key` and `fix` override the step's defaults (e.g. the val file, not the train file)."""

    def __init__(self, message: str, key: Optional[str] = None, fix: Optional[str] = None) -> None:
        super().__init__(message)
        self.key, self.fix = key, fix


class StepSkipped(Exception):
    """A step that cannot run here (the model is not on this machine, ...): skipped, with the reason."""


class Steps:
    """Child side: run steps in order, announce each, report its outcome; a step whose prerequisites did not
    succeed is skipped (saying which), so one failure does not hide the independent checks after it."""

    def __init__(self, stage: str, out: Any = None) -> None:
        self.stage = stage
        self.out = out or sys.stdout
        self.done: set[str] = set()

    def _emit(self, payload: dict[str, Any]) -> None:
        self.out.write(MARK + json.dumps(payload, default=str) + "\n")
        self.out.flush()

    def run(self, name: str, fn: Callable[[], tuple[Any, str]], *, key: Optional[str], fix: Optional[str],
            timeout: float, requires: tuple[str, ...] = ()) -> Any:
        """Run `fn` (returning (value, detail)) as step `name`; return the value, or None when it did not succeed."""
        missing = [r for r in requires if r not in self.done]
        if missing:
            self._emit({"stage": self.stage, "step": name, "status": "skipped",
                        "detail": f"needs {', '.join(missing)}, which did not succeed"})
            return None
        self._emit({"stage": self.stage, "step": name, "status": "start", "timeout": timeout, "key": key,
                    "fix": fix})
        start = time.monotonic()
        result: dict[str, Any] = {"stage": self.stage, "step": name}
        value = None
        try:
            value, detail = fn()
            result.update(status="ok", detail=detail)
            self.done.add(name)
        except StepSkipped as exc:
            result.update(status="skipped", detail=str(exc))
        except StepFailed as exc:
            result.update(status="failed", detail=str(exc), key=exc.key or key, fix=exc.fix or fix)
        except Exception as exc:  # noqa: BLE001 - whatever the framework raises is the message to show
            result.update(status="failed", detail=describe(exc)[:800], key=key, fix=fix)
        result["seconds"] = round(time.monotonic() - start, 2)
        self._emit(result)
        return value


def describe(exc: BaseException) -> str:
    """`Type: first line`, then the causes a framework wrapped it around (verl turns a plugin's ImportError into
    'Error loading module ...': the cause is what the user must fix). A first line that announces a list ("1
    problem in recipe:") keeps the list, on one line: alone it says nothing."""
    parts, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        head = text[0] if text else ""
        if head.endswith(":") and len(text) > 1:
            head = f"{head} {'; '.join(text[1:])}"
        parts.append(f"{type(exc).__name__}: {head}")
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return " <- caused by ".join(parts)


def read_request() -> dict[str, Any]:
    return json.loads(sys.stdin.read())
