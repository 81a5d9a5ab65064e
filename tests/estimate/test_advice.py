"""Advice: every suggested change, written back into the recipe as an override, gives the estimate it promised."""

from __future__ import annotations

from fakehr_orchestra.estimate.gpus import lookup
from fakehr_orchestra.estimate.recipe_estimate import estimate_recipe
from fakehr_orchestra.estimate.settings import Options
from fakehr_orchestra.recipe import load_recipe
from tests.conftest import RECIPES

SEED = str(RECIPES / "fake_hr1.yaml")


def _fmt(value):
    return str(value).lower() if isinstance(value, bool) else str(value)


def _round_trip(stage, gpu, extra=()):
    report = estimate_recipe(load_recipe(SEED, extra, None), lookup(gpu), Options(), (stage,))
    sr = report.stages[0]
    assert sr.estimate is not None and not sr.estimate.fits
    assert sr.advice
    for sug in sr.advice:
        if any(not c.key.startswith(("sft.", "grpo.", "cluster.")) for c in sug.changes):
            continue  # e.g. the processor's max_pixels lives in the model's preprocessor_config.json
        overrides = tuple(extra) + tuple(f"{c.key}={_fmt(c.value)}" for c in sug.changes)
        again = estimate_recipe(load_recipe(SEED, overrides, None), lookup(gpu), Options(), (stage,))
        assert abs(again.stages[0].estimate.needed - sug.estimate.needed) < 1, sug.text
        assert again.stages[0].estimate.verdict == sug.estimate.verdict
    return sr.advice


def test_grpo_advice_round_trips_and_cheapest_comes_first():
    advice = _round_trip("grpo", "h100-80gb")
    assert advice[0].cost == 1 and advice[0].estimate.fits
    assert [a.cost for a in advice] == sorted(a.cost for a in advice)


def test_sft_advice_on_a_small_gpu_round_trips():
    advice = _round_trip("sft", "rtx4090-24gb")
    keys = {c.key for a in advice for c in a.changes}
    assert keys & {"sft.args.deepspeed", "cluster.nodes", "vision.max_pixels", "sft.args.train_type"}
