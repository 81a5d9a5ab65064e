"""A Plan is what a stage will execute: argv, env, cwd. Rendering produces it; launching only executes it.

Values the node supplies at launch time (`${env:WORLD_SIZE}` in a recipe) appear in a plan as `${WORLD_SIZE}` and
are listed in `env_refs`; `resolve()` fills them from the launching environment. Quoting happens only here, at the
shell boundary, with script_text.shell_quote (shlex.quote, or $'...' for values with control characters).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping, Optional

from ..refs import PLAN_REF, RECIPE_ENV_REF
from ..script_text import shell_quote


class MissingEnvError(RuntimeError):
    """A launch-time reference (e.g. ${WORLD_SIZE}) is not set in the launching environment."""


@dataclass(frozen=True)
class Plan:
    """What runs, plus the facts the renderer knew while building it.

    The facts (engine, entrypoint, launcher, output dir, world size, and for each rendered flag / Hydra key / env
    var the recipe key it came from) travel with the plan so that preflight, the runner and the Slurm renderer read
    them instead of parsing the argv back.
    """

    stage: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "."
    env_refs: list[str] = field(default_factory=list)
    translations: list[str] = field(default_factory=list)  # which version translations render applied
    versions: dict[str, str] = field(default_factory=dict)  # the framework versions it was rendered for
    engine: str = ""  # swift | verl | "" (one of our own commands, or a helper such as the model merger)
    entrypoint: str = ""  # e.g. "swift sft", "swift rlhf", "verl.trainer.main_ppo": which parser reads the options
    head: int = 0  # argv[:head] is the program; argv[head:] are the options its parser reads
    launcher: str = "local"  # local (this node) | torchrun (ms-swift's NNODES/NPROC_PER_NODE) | ray (a verl driver)
    output_dir: Optional[str] = None  # where the stage writes its checkpoints (plan text: may hold ${REF})
    nnodes: Optional[str] = None  # nodes the stage spans (plan text); None: one node
    procs_per_node: Optional[str] = None  # processes (GPUs) per node (plan text); None: the framework's default
    origins: dict[str, str] = field(default_factory=dict)  # "--flag" / "hydra.key" / "env:NAME" -> recipe key

    @property
    def options(self) -> list[str]:
        """The arguments the framework's own parser reads (ms-swift's HfArgumentParser, verl's Hydra)."""
        return self.argv[self.head:]

    def origin(self, rendered: str, default: str) -> str:
        """The recipe key a rendered flag / key / env var (`env:NAME`) came from."""
        return self.origins.get(rendered.lstrip("+~"), default)

    def world(self, environ: Mapping[str, str]) -> tuple[int, Optional[int]]:
        """(nodes, processes per node) with launch-time references filled from `environ`; nodes default to 1."""
        def number(text: Optional[str], name: str) -> Optional[int]:
            if text is None:
                return None
            value = PLAN_REF.sub(lambda m: environ.get(m.group(1), m.group(0)), text)
            if not value.isdigit():
                raise MissingEnvError(f"stage {self.stage}: {name} is {text!r}, which is not a number here "
                                      f"(set the environment variable it names, or the recipe key)")
            return int(value)
        return number(self.nnodes, "the node count") or 1, number(self.procs_per_node, "processes per node")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Plan":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def to_shell(self) -> str:
        """A copy-pasteable command; launch-time references stay shell expansions ("${WORLD_SIZE}"). An env name
        that is not a shell identifier is refused here too (the schema refuses it in a recipe): `NAME=value` cannot
        be quoted, and `X$(cmd)=1` would run cmd when pasted."""
        from ..secrets import env_name_problem

        bad = [problem for problem in (env_name_problem(k, "env var name") for k in self.env) if problem]
        if bad:
            from . import RenderError

            raise RenderError(f"stage {self.stage}: " + "; ".join(bad))
        lines = [f"{k}={self._quote(v)}" for k, v in self.env.items()]
        current: list[str] = []
        for i, arg in enumerate(self.argv):
            prev = self.argv[i - 1] if i else ""
            starts_option = arg.startswith("--") or ("=" in arg and i > 0 and not prev.startswith("--"))
            if current and starts_option:
                lines.append(" ".join(current))
                current = []
            current.append(self._quote(arg))
        if current:
            lines.append(" ".join(current))
        command = " \\\n  ".join(lines)
        if self.cwd not in (".", ""):
            command = f"cd {shell_quote(self.cwd)} && \\\n" + command
        return command

    def _quote(self, value: str) -> str:
        refs = set(self.env_refs)
        pieces, last = [], 0
        for m in PLAN_REF.finditer(value):
            if m.group(1) not in refs:
                continue
            if m.start() > last:
                pieces.append(shell_quote(value[last:m.start()]))
            pieces.append(f'"${{{m.group(1)}}}"')
            last = m.end()
        if last < len(value) or not pieces:
            pieces.append(shell_quote(value[last:]))
        return "".join(pieces)

    def resolve(self, environ: Mapping[str, str]) -> "Plan":
        """Fill launch-time references from `environ`; every missing one is named in one error."""
        missing = [name for name in self.env_refs if name not in environ]
        if missing:
            raise MissingEnvError(
                f"stage {self.stage}: the recipe takes {', '.join(missing)} from the environment at launch "
                f"(written as ${{env:NAME}}); set {'it' if len(missing) == 1 else 'them'} or override the recipe key")

        def fill(text: str) -> str:
            return PLAN_REF.sub(lambda m: environ[m.group(1)] if m.group(1) in self.env_refs else m.group(0), text)

        def maybe(text: Optional[str]) -> Optional[str]:
            return None if text is None else fill(text)
        return replace(self, argv=[fill(a) for a in self.argv], env={k: fill(v) for k, v in self.env.items()},
                       cwd=fill(self.cwd), env_refs=[], output_dir=maybe(self.output_dir),
                       nnodes=maybe(self.nnodes), procs_per_node=maybe(self.procs_per_node))


def plan_value(value: Any, refs: list[str]) -> str:
    """A recipe value as plan text: `${env:X}` becomes `${X}` and X is recorded as a launch-time reference."""
    text = value if isinstance(value, str) else stringify(value)
    for name in RECIPE_ENV_REF.findall(text):
        if name not in refs:
            refs.append(name)
    return RECIPE_ENV_REF.sub(r"${\1}", text)


def stringify(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)
