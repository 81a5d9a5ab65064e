"""Plans rewritten for where torchrun runs them: the node count, this node's rank and the rendezvous of a
multi-node ms-swift stage, set after rendering (from the command line, or from the scheduler inside a Slurm job).

ms-swift turns NNODES / NODE_RANK / MASTER_ADDR / MASTER_PORT / NPROC_PER_NODE into torchrun flags
(swift/cli/main.py). `with_nodes()` sets them on a plan; values may be launch-time references such as
"${SLURM_NODEID}", which stay shell expansions in scripts and are filled by `Plan.resolve()` when run. A Ray
driver sizes its cluster itself, so `without_torchrun_env()` drops them from a verl plan.

These live with the renderers, not the launchers: a launcher only executes the plan it is given.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Optional, Union

from .plan import Plan

TORCHRUN_ENV = ("NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "NPROC_PER_NODE")
_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def with_nodes(plan: Plan, nodes: Union[int, str, None] = None, node_rank: Union[int, str, None] = None,
               master_addr: Optional[str] = None, master_port: Union[int, str, None] = None,
               nproc_per_node: Union[int, str, None] = None) -> Plan:
    """The plan with ms-swift's torchrun env set from the command line / the scheduler.

    A None argument keeps what the recipe rendered. A value like "${SLURM_NODEID}" becomes a launch-time reference.
    References that no longer appear anywhere (e.g. the recipe's ${RANK} replaced by a rank given here) are dropped,
    so `resolve()` does not ask for them.
    """
    given = {"NNODES": nodes, "NODE_RANK": node_rank, "MASTER_ADDR": master_addr, "MASTER_PORT": master_port,
             "NPROC_PER_NODE": nproc_per_node}
    env = dict(plan.env)
    for key, value in given.items():
        if value is not None:
            env[key] = str(value)
    return _with_refs(replace(plan, env=env, nnodes=env.get("NNODES"), procs_per_node=env.get("NPROC_PER_NODE")))


def without_torchrun_env(plan: Plan) -> Plan:
    """The plan minus the torchrun variables (a Ray driver sizes its cluster itself; they would only mislead)."""
    return _with_refs(replace(plan, env={k: v for k, v in plan.env.items() if k not in TORCHRUN_ENV}))


def _with_refs(plan: Plan) -> Plan:
    used: list[str] = []
    for text in [*plan.argv, *plan.env.values(), plan.cwd]:
        for name in _REF.findall(text):
            if name not in used:
                used.append(name)
    # keep the recipe's order for refs that survive; refs introduced here (e.g. SLURM_NODEID) follow
    refs = [r for r in plan.env_refs if r in used] + [r for r in used if r not in plan.env_refs
                                                      and _introduced(plan, r)]
    return replace(plan, env_refs=refs)


def _introduced(plan: Plan, name: str) -> bool:
    """A ${NAME} in a torchrun variable set by with_nodes() is a launch-time reference by construction."""
    return any(f"${{{name}}}" in plan.env.get(key, "") for key in TORCHRUN_ENV)
