"""The data stage: raw sets (FakeClue json, GenImage trees, plain jsonl) -> one canonical manifest -> validated,
split -> exactly the files ms-swift (SFT / GRPO jsonl), verl (parquet) and the evaluator (eval jsonl) read.

Everything streams: records move in bounded chunks, image checks run in a process pool, every file is written
atomically. `stage.prepare(recipe_model, out_dir)` runs the whole thing as a recipe's `data:` section says.
"""

from __future__ import annotations


class DataError(Exception):
    """A problem the user must fix (bad source, strict validation failure); the message says what and where."""
