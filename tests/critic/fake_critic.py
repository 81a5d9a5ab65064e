"""A stand-in for `swift deploy` where ms-swift is not the point: a real process serving the OpenAI API on --port
(GET /v1/models lists --model; chat completions answer --reply), with a child process in its group like ms-swift's
self re-launch. `--exit N --after S` exits with N after S seconds instead (a server that dies)."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.rewards.critic_server import CriticServer, fixed  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default="judge")
    parser.add_argument("--reply", default='{"score": 0.75}')
    parser.add_argument("--exit", type=int, default=None)
    parser.add_argument("--after", type=float, default=0.0)
    parser.add_argument("--stubborn-child", action="store_true", help="the child ignores SIGTERM")
    args = parser.parse_args()
    code = "import signal, time\n" + ("signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" if args.stubborn_child
                                       else "") + "time.sleep(600)"
    child = subprocess.Popen([sys.executable, "-c", code])  # e.g. an engine process
    print(f"fake critic: child {child.pid}", flush=True)
    if args.exit is not None:
        time.sleep(args.after)
        return args.exit
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # like uvicorn: a clean exit on SIGTERM (child stays!)
    with CriticServer(fixed(args.reply), models=(args.model,), port=args.port):
        print(f"fake critic: serving {args.model} on {args.port}", flush=True)
        while True:
            time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
