"""A rehearsal child for the supervisor's tests: runs the steps named on its command line through the real protocol.
`ok`, `hang` (sleeps past its timeout), `fail`, `crash` (the process dies in the step)."""

import os
import sys
import time

from fakehr_orchestra.rehearsal.protocol import StepFailed, Steps, read_request


def main() -> None:
    request = read_request()
    steps = Steps("grpo")
    for i, kind in enumerate(request["steps"]):
        def body(kind: str = kind) -> tuple[None, str]:
            if kind == "hang":
                time.sleep(600)
            if kind == "fail":
                raise StepFailed("it broke", key="grpo.some.key", fix="mend it")
            if kind == "crash":
                sys.stderr.write("last words\n")
                sys.stderr.flush()
                os._exit(3)
            return None, "fine"
        steps.run(f"step{i}-{kind}", body, key="grpo.default", fix=None, timeout=2)


if __name__ == "__main__":
    main()
