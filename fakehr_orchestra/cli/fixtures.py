"""`fakehr-orchestra fixtures tiny DIR`: the tiny model and image sets, built offline."""

from __future__ import annotations

import json

import click


@click.group()
def fixtures() -> None:
    """Build offline fixtures for tests and the demo."""


@fixtures.command("tiny")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Rebuild even if an identical fixture is there.")
@click.option("--per-class", default=4, show_default=True, help="Images per class, generator and split.")
def tiny(out_dir: str, force: bool, per_class: int) -> None:
    """Random-init Qwen2.5-VL (Qwen's special-token ids, real processor) + FakeClue/GenImage-like sets."""
    from ..fixtures import build_tiny

    click.echo(json.dumps(build_tiny(out_dir, force=force, per_class=per_class), indent=2))
