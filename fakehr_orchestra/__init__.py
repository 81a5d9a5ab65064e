"""fakehr-orchestra: recipes rendered into exact ms-swift / verl commands, validated, launched.

Importing this package must stay cheap: no torch, swift, verl or ray at import time (the CLI starts fast).
"""

__version__ = "0.1.0"
