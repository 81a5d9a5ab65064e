"""The environment a launched command gets: ours, what the launcher adds, the plan's own, our venv first on PATH."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping, Optional

from ..engines.plan import Plan


def venv_bin() -> str:
    """The bin dir of the running interpreter: `swift`, `python3`, `ray` there are the ones installed with us."""
    return str(Path(sys.executable).parent)


def child_environ(plan: Plan, environ: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """os.environ, then `environ` (values a launcher adds), then the plan's env; the venv first on PATH."""
    env = dict(os.environ)
    if environ is not None:
        env.update(environ)
    env.update(plan.env)
    env["PATH"] = venv_bin() + os.pathsep + env.get("PATH", "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
