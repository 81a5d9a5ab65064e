"""`fakehr-orchestra eval`: infer (batch inference, resumable), score (metrics JSON), report (JSON + Markdown + PNG).

Heavy imports (torch, transformers, vLLM, scikit-learn, matplotlib) happen inside the commands only.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Optional

import click

from ..numbers import Rule, click_number
from .common import fail, friendly_errors, load, recipe_arguments


def eval_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Bad eval input (data rows, settings, a foreign output file) is a message and exit 2, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ..evaluation.infer import ResumeError, SettingsError
        from ..evaluation.reader import EvalDataError
        from ..outputs import OutputPathError
        try:
            return func(*args, **kwargs)
        except (EvalDataError, SettingsError, ResumeError, OutputPathError) as exc:
            fail(f"error: {exc}")
    return wrapper


@click.group("eval")
def eval_group() -> None:
    """Batch inference, metrics and reports."""


@eval_group.command()
@recipe_arguments
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Model directory (HF format: an SFT checkpoint or a merged GRPO model).")
@click.option("--data", default=None, help="Eval jsonl {file_path, label[, source, category, generator]}; "
              "default: eval.dataset.")
@click.option("--out", default=None, help="Predictions jsonl (appended to, resumable); "
              "default: <eval.output_dir>/predictions.jsonl.")
@click.option("--backend", type=click.Choice(["transformers", "vllm"]), default=None,
              help="Default: eval.backend.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Default: eval.batch_size.")
@click.option("--device", default=None, help="transformers backend: cpu / cuda / cuda:N; default: eval.device, "
              "else cluster.device.")
@friendly_errors
@eval_errors
def infer(recipe: str, overrides: tuple[str, ...], profile: Optional[str], model_dir: str, data: Optional[str],
          out: Optional[str], backend: Optional[str], batch_size: Optional[int], device: Optional[str]) -> None:
    """Answer every image of the eval set with RECIPE's prompt; resume where a previous run stopped."""
    from ..evaluation.infer import drift_notes, from_recipe, run_inference
    from ..evaluation.reader import read_eval_set

    rec = load(recipe, overrides, profile)
    ev = rec.model.eval
    data = data or ev.dataset
    if not data:
        fail("error: no eval set: pass --data EVAL.jsonl or set eval.dataset in the recipe")
    out_path = Path(out) if out else Path(ev.output_dir) / "predictions.jsonl"
    from ..outputs import refuse_input_as_output
    refuse_input_as_output({"--out": out_path}, {"--data": data})
    settings = from_recipe(rec, str(Path(model_dir).resolve()), backend, batch_size, device)
    for note in drift_notes(rec):
        click.echo(f"note: {note}", err=True)
    items = read_eval_set(data, ev.label_convention)

    def progress(done: int, total: int) -> None:
        click.echo(f"{done}/{total} images", err=True)

    summary = run_inference(settings, items, out_path, data=str(Path(data).resolve()), progress=progress)
    if summary.repaired_bytes:
        click.echo(f"cut a torn last line ({summary.repaired_bytes} bytes) left by an interrupted run", err=True)
    click.echo(f"{out_path}: {summary.total} images ({summary.already_done} already done, {summary.written} new) "
               f"in {summary.seconds:.1f} s")


@eval_group.command()
@recipe_arguments
@click.option("--model", "model_specs", required=True, multiple=True, metavar="[NAME=]DIR",
              help="A model directory to evaluate, optionally named (sft=runs/x/sft/...); repeat for several.")
@click.option("--out", default=None, help="Suite folder (resumable); default: <eval.output_dir>/suite.")
@click.option("--backend", type=click.Choice(["transformers", "vllm"]), default=None,
              help="Default: eval.backend.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Default: eval.batch_size.")
@click.option("--device", default=None, help="transformers backend: cpu / cuda / cuda:N.")
@click.option("--protocol", type=click.Choice(["fakevlm"]), default=None,
              help="Also score each cell with a published parsing protocol (see `eval score --protocol`).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Image-check processes when reading the sets (default: data.workers, else every core).")
@friendly_errors
@eval_errors
def suite(recipe: str, overrides: tuple[str, ...], profile: Optional[str], model_specs: tuple[str, ...],
          out: Optional[str], backend: Optional[str], batch_size: Optional[int], device: Optional[str],
          protocol: Optional[str], workers: Optional[int]) -> None:
    """Answer and score every model on every set of RECIPE's eval.sets; write the matrix (suite.md, suite.json)."""
    from ..evaluation.suite import run_suite

    rec = load(recipe, overrides, profile)
    models: dict[str, str] = {}
    for spec in model_specs:
        name, sep, path = spec.partition("=")
        name, path = (name, path) if sep and not Path(spec).is_dir() else (Path(spec).name, spec)
        if not Path(path).is_dir():
            fail(f"error: --model {spec}: {path} is not a model directory")
        if name in models:
            fail(f"error: --model {spec}: two models named {name!r}; name them (NAME=DIR)")
        models[name] = path
    out_dir = Path(out) if out else Path(rec.model.eval.output_dir) / "suite"
    try:
        run = run_suite(rec, models, out_dir, backend=backend, batch_size=batch_size, device=device,
                        protocol=protocol, workers=workers, progress=lambda line: click.echo(line, err=True))
    except ValueError as exc:  # bad sets, settings or a foreign output file (EvalDataError, SettingsError, ...)
        fail(f"error: {exc}")
    click.echo(f"{run.files['markdown']}: {len(models)} model(s) x {len(rec.model.eval.sets)} set(s), "
               f"{sum(run.answered.values())} images answered now")


@eval_group.command()
@recipe_arguments
@click.option("--predictions", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The predictions jsonl `eval infer` wrote.")
@click.option("--out", required=True, help="Consistency scores JSON to write (give it to `eval score --consistency`).")
@click.option("--url", default=None, help="The critic's base URL (default: the recipe's critic section).")
@friendly_errors
@eval_errors
def consistency(recipe: str, overrides: tuple[str, ...], profile: Optional[str], predictions: str, out: str,
                url: Optional[str]) -> None:
    """Ask RECIPE's critic to score the reasoning of each answer in PREDICTIONS (as the GRPO reward asks it)."""
    from ..evaluation import consistency as cons
    from ..evaluation.reader import iter_predictions, read_meta
    from ..io import write_json_atomic
    from ..prompts import effective

    rec = load(recipe, overrides, profile)
    model = rec.model
    if model.critic.mode == "off" and not url:
        write_json_atomic(out, cons.not_computed(cons.NOT_CONFIGURED))
        click.echo(f"{out}: logical consistency not computed: {cons.NOT_CONFIGURED}")
        return
    client, asked = cons.critic_client(model, url)
    rows = iter_predictions(predictions, torn_tail=read_meta(predictions) is not None)
    result = cons.score_rows(rows, client, model.prompt.answer_format, effective(model.prompt.response_prefix))
    result = {"computed": True, "critic": asked, "predictions": str(Path(predictions).resolve()), **result}
    write_json_atomic(out, result)
    counts = {s: sum(1 for r in result["rows"] if r["status"] == s)
              for s in ("scored", "fallback", "no_reasoning", "image_error")}
    scores = [r["score"] for r in result["rows"] if r["status"] == "scored"]
    mean = f"{sum(scores) / len(scores):.4f}" if scores else "n/a"
    click.echo(f"{out}: {len(result['rows'])} answers; critic {asked['model']} ({asked['template']}) scored "
               f"{counts['scored']} (mean {mean}), fell back on {counts['fallback']}; not asked: "
               f"{counts['no_reasoning']} without reasoning, {counts['image_error']} image errors "
               f"[{result['critic_calls']}]")
    if counts["fallback"] and not counts["scored"]:
        click.echo(f"WARNING: the critic at {asked['url']} gave no score for any answer (unreachable, or replies "
                   f"without a score for template {asked['template']}): consistency is n/a; check the critic "
                   f"section (served_model_name, template) and the server's log", err=True)


@eval_group.command()
@click.argument("predictions", type=click.Path(dir_okay=False))
@click.option("--out", required=True, help="Metrics JSON to write.")
@click.option("--bootstrap", "samples", type=click.IntRange(min=0), default=None,
              help="Bootstrap resamples for accuracy confidence intervals (0: none); default: the recipe's "
              "eval.bootstrap_samples as recorded by `eval infer`, else 1000.")
@click.option("--confidence", type=click_number(Rule(low=0, low_open=True, high=1, high_open=True)), default=None,
              help="Default: eval.confidence as recorded, else 0.95.")
@click.option("--seed", type=int, default=None, help="Default: eval.seed as recorded, else 0.")
@click.option("--allow-incomplete", is_flag=True, help="Score a predictions file inference has not finished "
              "(the metrics then say so).")
@click.option("--answer-format", type=click.Choice(["fake_hr1", "fakevlm_r1"]), default=None,
              help="Parse the raw 'response' of rows that carry no parse ('pred'), e.g. from another tool or the "
              "seed's inference script, with this method's strict parser.")
@click.option("--response-prefix", default=None, help="With --answer-format: the prefix generation started after "
              "(e.g. '<think>\\n'), put back before parsing when a response lacks it.")
@click.option("--data", default=None, type=click.Path(exists=True, dir_okay=False),
              help="The eval jsonl {file_path, label, ...} the responses answer: labels and groups are taken from "
              "it (joined on the image path), and every image in it must be answered.")
@click.option("--label-convention", default="text", show_default=True,
              help="How --data writes labels (eval.label_convention).")
@click.option("--consistency", "consistency_file", default=None, type=click.Path(exists=True, dir_okay=False),
              help="The critic's scores of these predictions (`eval consistency`): mean logical consistency with a "
              "bootstrap CI, overall and per group.")
@click.option("--protocol", type=click.Choice(["fakevlm"]), default=None,
              help="Also score the raw responses as a published eval script parses them (fakevlm: FakeVLM's "
              "first-sentence substring test with a seeded coin flip; --seed seeds it), reported beside the strict "
              "figures under its name, for comparison with that paper's tables.")
@eval_errors
def score(predictions: str, out: str, samples: Optional[int], confidence: Optional[float], seed: Optional[int],
          allow_incomplete: bool, answer_format: Optional[str], response_prefix: Optional[str], data: Optional[str],
          label_convention: str, consistency_file: Optional[str], protocol: Optional[str]) -> None:
    """Compute metrics from PREDICTIONS (written by `eval infer`, or raw responses with --answer-format)."""
    from ..evaluation.metrics import score_file
    from ..io import write_json_atomic
    from ..outputs import refuse_input_as_output

    refuse_input_as_output({"--out": out}, {"PREDICTIONS": predictions, **({"--data": data} if data else {})})
    prefix = response_prefix.replace("\\n", "\n") if response_prefix else None
    metrics = score_file(predictions, samples, confidence, seed, allow_incomplete, answer_format=answer_format,
                         response_prefix=prefix, data=data, convention=label_convention,
                         consistency=consistency_file, protocol=protocol)
    write_json_atomic(out, metrics)
    o, s = metrics["overall"], metrics["overall"]["strict"]

    def pct(x: Optional[float]) -> str:
        return "n/a" if x is None else f"{100 * x:.2f}%"

    click.echo(f"{out}: {o['n']} images, accuracy {pct(o['accuracy'])}, unparseable {o['unparseable']}, "
               f"think rate {100 * (metrics['think_rate'] or 0):.1f}%")
    click.echo(f"  lenient (unparseable = third class): F1 {pct(o['f1'])}, precision {pct(o['precision'])}; "
               f"strict (unparseable = wrong class): accuracy {pct(s['accuracy'])}, F1 {pct(s['f1'])}, "
               f"precision {pct(s['precision'])}")
    if protocol:
        p = o[protocol]
        click.echo(f"  {protocol} parsing (paper-comparable): accuracy {pct(p['accuracy'])}, real recall "
                   f"{pct(p['real_recall'])}, fake recall {pct(p['fake_recall'])}; {p['guessed']} answers decided "
                   f"by a coin flip (seed {p['seed']})")
    if o["n"] and o["unparseable"] == o["n"]:
        click.echo(f"WARNING: every answer in {predictions} is unparseable (accuracy 0 says nothing about the "
                   f"model's judgement): check the prompt, the answer format and max_new_tokens", err=True)


@eval_group.command()
@click.argument("metrics", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--names", default=None, help="Comma-separated run names, one per metrics file (e.g. sft,grpo).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Report folder.")
@click.option("--allow-different-eval-sets", is_flag=True, help="Report runs scored on different eval sets (other "
              "images or row counts) side by side anyway; the report then warns at the top.")
@click.option("--curves", "curve_files", multiple=True, metavar="[RUN/]STAGE=PATH",
              help="Training curves to plot (a run dir's curves/<stage>.jsonl); repeat for SFT, GRPO, other runs.")
def report(metrics: tuple[str, ...], names: Optional[str], out: str, allow_different_eval_sets: bool,
           curve_files: tuple[str, ...]) -> None:
    """JSON + Markdown + PNG report of one or more METRICS files (side by side)."""
    from ..evaluation.report import build_report, eval_set_mismatch
    from ..outputs import OutputPathError, refuse_input_as_output

    inputs = {f"METRICS {m}": m for m in metrics}
    inputs.update({f"--curves {c}": c.partition("=")[2] for c in curve_files if "=" in c})
    written = {f"--out/{n}": Path(out) / n for n in ("report.json", "report.md")}
    try:  # the report's own files never replace what it reads (a metrics file kept as OUT/report.json)
        refuse_input_as_output(written, inputs)
    except OutputPathError as exc:
        fail(f"error: {exc}")
    try:
        written = build_report(list(metrics), names.split(",") if names else None, out, list(curve_files),
                               allow_different_eval_sets=allow_different_eval_sets)
    except ValueError as exc:
        fail(f"error: {exc}")
    if allow_different_eval_sets:
        import json

        mismatch = eval_set_mismatch(list(json.loads(Path(written["json"]).read_text())["runs"].items()))
        if mismatch:
            click.echo(f"WARNING: runs scored on different eval sets ({mismatch}); not comparable", err=True)
    click.echo(f"{written['markdown']} ({len(written)} files in {out})")
