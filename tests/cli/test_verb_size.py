"""The CLI parses options and prints; what a verb orchestrates lives in the packages below it (pipeline/, launch/).
A function that grows past a screen in cli/ is the sign that orchestration is creeping back."""

from __future__ import annotations

import ast
from pathlib import Path

import fakehr_orchestra.cli

LIMIT = 40  # lines from `def` to the function's last line (decorators aside)


def test_no_cli_function_is_longer_than_a_screen():
    too_long = []
    for path in sorted(Path(fakehr_orchestra.cli.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > LIMIT:
                    too_long.append(f"{path.name}:{node.lineno} {node.name} ({length} lines)")
    assert not too_long, "move the orchestration into pipeline/ or launch/: " + "; ".join(too_long)
