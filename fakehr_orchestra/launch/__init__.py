"""Launchers: everything here executes a rendered Plan; nothing re-derives a command from the recipe.

- launcher.py: the one interface every launcher has, and `choose_launcher`, the one place a step's is chosen
- local.py: a plan in the foreground on this node; service.py: a plan in the background (a server a stage needs)
- process_group.py, watchdog.py: the process group each runs in, stopped whole, even when we die first
- ray_cluster.py: a verl driver on a Ray cluster; srun.py: a plan on every node of a Slurm job
- slurm.py: Slurm batch scripts for a stage; slurm_chain.py: the pipeline as chained Slurm jobs

Nothing is imported here: `watchdog.py` runs as a program of its own, and the CLI must start fast.
"""
