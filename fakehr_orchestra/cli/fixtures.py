"""`fakehr-orchestra fixtures tiny DIR`: the tiny model and image sets, built offline."""

from __future__ import annotations

import json

import click

from ..families import names


@click.group()
def fixtures() -> None:
    """Build offline fixtures for tests and the demo."""


@fixtures.command("tiny")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Rebuild even if an identical fixture is there.")
@click.option("--per-class", default=4, show_default=True, help="Images per class, generator and split.")
@click.option("--family", type=click.Choice(names()), default="qwen2_5_vl",
              show_default=True, help="Model family (fakehr_orchestra/families.py) of the tiny model.")
def tiny(out_dir: str, force: bool, per_class: int, family: str) -> None:
    """Random-init Qwen2.5-VL / Qwen3-VL / Qwen3-VL-MoE (the family's special-token ids, real processor and chat
    template) + FakeClue/GenImage-like sets."""
    from ..outputs import OutputPathError
    from ..tinyworld import build_tiny

    try:
        paths = build_tiny(out_dir, force=force, per_class=per_class, family=family)
    except OutputPathError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(paths, indent=2))
