"""The pipeline: stages in order, each one's artifacts wired into the next, state in a run directory."""
