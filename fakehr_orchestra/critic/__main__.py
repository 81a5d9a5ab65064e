"""`python -m fakehr_orchestra.critic`: the critic's readiness probe and server, for scripts (e.g. one Slurm step).

  wait   --url URL --model NAME [--timeout S] [--api-key-env VAR]
         exit 0 once URL/models lists NAME and one judged request with an image is answered; 1 on timeout or when
         the server answers for another model. The last line of stdout is the result as JSON.
  serve  RECIPE [OVERRIDES...] [-p PROFILE] --log PATH
         run the recipe's critic server (`swift deploy`, as `fakehr-orchestra render RECIPE --stage critic` shows it)
         in the foreground, in its own process group: SIGTERM/SIGINT stop its whole tree; exits with its code.

A Slurm script runs `serve` as one `srun` step in the background, `wait`s on it, then runs the GRPO stage with
`critic.mode=external critic.url=<that URL>`, and stops the step (kill of the srun) when the stage ends.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from ..numbers import POSITIVE, argparse_number


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fakehr_orchestra.critic")
    sub = parser.add_subparsers(dest="verb", required=True)
    wait = sub.add_parser("wait", help="wait until a critic endpoint serves the model and answers a judged request")
    wait.add_argument("--url", required=True, help="the OpenAI-compatible base URL, e.g. http://host:8000/v1")
    wait.add_argument("--model", required=True, help="the served model name requests ask for")
    wait.add_argument("--timeout", type=argparse_number(POSITIVE), default=900.0, help="seconds before giving up (default 900)")
    wait.add_argument("--poll", type=argparse_number(POSITIVE), default=2.0, help="seconds between attempts (default 2)")
    wait.add_argument("--api-key-env", default=None, help="env var holding the API key, if the server wants one")
    wait.add_argument("--template", default="json_score", choices=("json_score", "sophiavl_r1"),
                      help="how the judged request is asked (the recipe's critic.template; default json_score)")
    serve = sub.add_parser("serve", help="run the recipe's critic server in the foreground")
    serve.add_argument("recipe")
    serve.add_argument("overrides", nargs="*")
    serve.add_argument("--profile", "-p", default=None)
    serve.add_argument("--log", required=True, help="the server's log file (appended)")
    # overrides may come before or after the options (as with `fakehr-orchestra run`): argparse stops collecting a
    # positional list at the first option, so what it leaves over is taken as overrides when it looks like one
    args, rest = parser.parse_known_args(argv)
    odd = [r for r in rest if args.verb != "serve" or r.startswith("-") or not ("=" in r or r.startswith("~"))]
    if odd:
        parser.error(f"unrecognized arguments: {' '.join(odd)}")
    if args.verb == "wait":
        from .probe import wait_ready

        result = wait_ready(args.url, args.model, args.timeout, args.api_key_env, poll_s=args.poll,
                            template=args.template)
        print(result.message, file=sys.stderr)
        print(result.to_json(), flush=True)
        return 0 if result.ok else 1
    return _serve(args.recipe, (*args.overrides, *rest), args.profile, Path(args.log))


def _serve(recipe: str, overrides: tuple[str, ...], profile: Optional[str], log: Path) -> int:
    from ..engines import RenderError, render
    from ..engines.plan import MissingEnvError
    from ..launch.local import run_plan
    from ..recipe import RecipeError, load_recipe

    try:
        plan = render(load_recipe(recipe, overrides, profile), "critic")
        return run_plan(plan, log, echo=True)
    except (RecipeError, RenderError, MissingEnvError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
