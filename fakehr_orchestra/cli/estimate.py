"""`fakehr-orchestra estimate`: will each stage fit on the GPU, how long will it take, what to change if it won't.

Pure arithmetic over the recipe and the model's config.json: imports no torch or framework, answers in well under
two seconds. Exit 0: every estimated stage fits (or is tight); 1: a stage does not fit; 2: bad input.
"""

from __future__ import annotations

import click

from ..numbers import Rule, click_number
from .common import fail, friendly_errors, load, recipe_arguments


@click.command()
@recipe_arguments
@click.option("--gpu", "gpu_name", default=None, help="GPU model (e.g. h100-80gb, a100-40gb, h200-141gb; NNgib for "
              "any size). Default: the recipe's cluster.gpu.")
@click.option("--gpu-memory-gb", type=click_number(Rule(low=1)), default=None,
              help="Usable GPU memory in GiB, instead of --gpu.")
@click.option("--stage", "-s", type=click.Choice(["sft", "grpo", "all"]), default="all", show_default=True)
@click.option("--nodes", type=click.IntRange(min=1), default=None, help="Node count, when cluster.nodes is set at "
              "launch (${env:..}) or to try another size.")
@click.option("--gpus-per-node", type=click.IntRange(min=1), default=None, help="GPUs per node, likewise.")
@click.option("--model", default=None, help="Size this known model instead of the recipe's (e.g. "
              "Qwen2.5-VL-32B-Instruct), or a path to a model directory.")
@click.option("--response-tokens", type=click.IntRange(min=1), default=None,
              help="Longest SFT answer in tokens (default: the recipe's GRPO max_response_length, else 1024).")
@click.option("--sft-rows", type=click.IntRange(min=0), default=None, help="SFT dataset rows, when the files are "
              "not here to count.")
@click.option("--grpo-rows", type=click.IntRange(min=0), default=None, help="GRPO dataset rows, likewise.")
@click.option("--mfu", type=click_number(Rule(low=0.01, high=1.0)), default=0.4, show_default=True,
              help="Model-FLOPs utilisation assumed for the time figures.")
@click.option("--verbose", "-v", is_flag=True, help="Show every phase, not only each stage's peak.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable estimate.")
@friendly_errors
def estimate(recipe: str, overrides: tuple[str, ...], profile: str | None, gpu_name: str | None,
             gpu_memory_gb: float | None, stage: str, nodes: int | None, gpus_per_node: int | None,
             model: str | None, response_tokens: int | None, sft_rows: int | None, grpo_rows: int | None,
             mfu: float, verbose: bool, as_json: bool) -> None:
    """Estimate RECIPE's per-GPU memory (and time) for each stage. OVERRIDES as for render (e.g.
    sft.args.max_length=4096) to try a change before editing the recipe."""
    from ..estimate import gpus
    from ..estimate.models import ModelError
    from ..estimate.recipe_estimate import estimate_recipe
    from ..estimate.report import to_json, to_text
    from ..estimate.settings import Options

    loaded = load(recipe, overrides, profile)
    if gpu_name and gpu_memory_gb:
        raise click.BadParameter("give --gpu or --gpu-memory-gb, not both", param_hint="--gpu")
    if gpu_memory_gb:
        gpu = gpus.custom(gpu_memory_gb)
    else:
        name = gpu_name or loaded.model.cluster.gpu
        if not name:
            fail(f"error: name the GPU: --gpu NAME ({', '.join(gpus.names())}) or --gpu-memory-gb N, or set "
                 "cluster.gpu in the recipe")
        found = gpus.lookup(name)
        if found is None:
            from ..recipe.errors import did_you_mean
            hint = did_you_mean(name.lower(), gpus.names())
            raise click.BadParameter(f"unknown GPU {name!r}{'; ' + hint if hint else ''} (known: "
                                     f"{', '.join(gpus.names())}, or NNgib)", param_hint="--gpu")
        gpu = found
    opts = Options(nodes=nodes, gpus_per_node=gpus_per_node, model=model, response_tokens=response_tokens,
                   sft_rows=sft_rows, grpo_rows=grpo_rows, mfu=mfu)
    try:
        report = estimate_recipe(loaded, gpu, opts, ("sft", "grpo") if stage == "all" else (stage,))
    except ModelError as exc:
        fail(f"error: {exc}")
    click.echo(to_json(report) if as_json else to_text(report, verbose))
    bad = any(sr.estimate is not None and not sr.estimate.fits for sr in report.stages)
    raise SystemExit(1 if bad else 0)
