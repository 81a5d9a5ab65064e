"""Launchers: one node (local.py), a Ray cluster for verl (ray_cluster.py), Slurm batch jobs (slurm.py), the
pipeline as chained Slurm jobs (slurm_chain.py), a plan on every node of a Slurm job (srun.py).

Everything here executes a rendered Plan; nothing re-derives a command from the recipe.
"""

from .local import run_plan, with_nodes, without_torchrun_env

__all__ = ["run_plan", "with_nodes", "without_torchrun_env"]
