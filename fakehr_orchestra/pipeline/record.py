"""A stage's record in the run's manifest (`stages.<name>` of manifest.json), as a type with its transitions.

The runner moves a record through its states with the `mark_*` methods instead of editing a dict, so what each
outcome writes is in one place. The JSON is what earlier versions wrote, key for key: a field that is None is not
written (absent, as before), and keys this version does not know, or an explicit null an older file holds, are kept
as read, so a run dir started by an older version resumes and reads the same to `status`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .rundir import now

# what the end of an attempt sets: a new attempt clears them (its log, skip reason, artifacts and warnings stay
# until the attempt replaces them, as `status` has always shown them)
ATTEMPT_OUTCOME = ("error", "exit_code", "failed_step", "ended", "seconds")


@dataclass
class StageRecord:
    status: str = "pending"  # one of rundir.STATUSES
    plan_digest: str | None = None  # what the stage runs and on which inputs (runner._plan_digest)
    started: str | None = None
    attempts: int | None = None
    inputs: dict[str, str] | None = None  # recipe key or role -> the upstream value wired in
    plans: str | None = None  # the file of its rendered plans
    runner: dict[str, Any] | None = None  # pid, host, pid_start of the process running it (status checks it lives)
    ended: str | None = None
    seconds: float | None = None
    exit_code: int | None = None
    failed_step: str | None = None
    error: str | None = None
    log: str | None = None  # the log of the step (or service) that failed
    reason: str | None = None  # why it was skipped
    artifacts: dict[str, dict[str, str]] | None = None  # name -> {path, sha256}
    sources: str | None = None  # the data stage: the fingerprint of what it read (data/fingerprint.py)
    services: dict[str, dict[str, Any]] | None = None  # its servers by name (pipeline/services.py writes them)
    warnings: list[str] | None = None
    superseded: list[str] | None = None  # earlier outputs set aside (never deleted)
    extra: dict[str, Any] = field(default_factory=dict)  # kept as read: keys not above, explicit nulls

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageRecord:
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known and v is not None}
        return cls(**values, extra={k: v for k, v in data.items() if k not in values})

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.extra)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name != "extra" and value is not None:
                out[f.name] = value
        return out

    def _set(self, **values: Any) -> None:
        for key, value in values.items():
            setattr(self, key, value)
            self.extra.pop(key, None)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "skipped")

    def mark_running(self, plan_digest: str, inputs: dict[str, str], plans: str, runner: dict[str, Any]) -> None:
        """A new attempt: what the last one ended with is cleared."""
        self._set(plan_digest=plan_digest, status="running", started=now(), attempts=(self.attempts or 0) + 1,
                  inputs=inputs, plans=plans, runner=runner)
        for key in ATTEMPT_OUTCOME:
            setattr(self, key, None)
            self.extra.pop(key, None)

    def mark_skipped(self, reason: str, artifacts: dict[str, dict[str, str]]) -> None:
        self._set(status="skipped", reason=reason, ended=now(), artifacts=artifacts)

    def mark_failed(self, *, interrupted: bool = False, error: str | None = None, exit_code: int | None = None,
                    failed_step: str | None = None, seconds: float | None = None, log: str | None = None) -> None:
        """It ended without its outputs: `interrupted` when stopped by a signal (a resume continues it), else
        failed. Only what is given is recorded; the rest stays as it was."""
        given = dict(error=error, exit_code=exit_code, failed_step=failed_step, seconds=seconds, log=log)
        self._set(status="interrupted" if interrupted else "failed", ended=now(),
                  **{k: v for k, v in given.items() if v is not None})

    def mark_done(self, artifacts: dict[str, dict[str, str]], seconds: float) -> None:
        self._set(status="done", exit_code=0, ended=now(), seconds=seconds, artifacts=artifacts)

    def service_entries(self) -> dict[str, dict[str, Any]]:
        """Its servers' entries, created on first use (a stage without services records none)."""
        if self.services is None:
            self._set(services={})
        assert self.services is not None
        return self.services
