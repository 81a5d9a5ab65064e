"""The data side of a rehearsal, run as `python -m fakehr_orchestra.rehearsal.data_child` (request on stdin): the data
stage exactly as the pipeline runs it (`data.stage.prepare`), on the first records of each source, into a temporary
folder. Its exports are what the training stages' rehearsals then load: the files the data stage would write.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from .protocol import StepFailed, Steps, StepSkipped, read_request


def main() -> int:
    request = read_request()
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    steps = Steps("data", protocol)

    def step_prepare() -> tuple[Any, str]:
        from ..data import DataError
        from ..data.stage import prepare
        from ..recipe import load_recipe

        recipe = load_recipe(request["recipe"], request["overrides"], request["profile"])
        model = recipe.model
        base = os.path.abspath(model.workdir)
        missing = [s.path for s in model.data.sources
                   if not os.path.exists(s.path if os.path.isabs(s.path) else os.path.join(base, s.path))]
        if missing:
            raise StepSkipped(f"data source {missing[0]} is not on this machine (validate reports it); the "
                              "training stages are rehearsed with the recipe's own files")
        try:
            paths = prepare(model, request["out"], workers=1, limit=int(request["limit"]))
        except DataError as exc:
            raise StepFailed(str(exc)) from None
        with open(paths["validation"], encoding="utf-8") as handle:
            report = json.load(handle)
        return None, (f"the first {request['limit']} records of each source -> {report['ok']} usable of "
                      f"{report['total']}; exports in {request['out']}")

    steps.run("sample of the data stage", step_prepare, key="data.sources", timeout=300,
              fix="see the error; `fakehr-orchestra data prepare RECIPE` shows the full report")
    protocol.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
