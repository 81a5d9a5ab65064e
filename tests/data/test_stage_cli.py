"""`data prepare` end to end on the smoke recipe, and the failure paths: no artifacts.json, no partial exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from fakehr_orchestra.cli import cli

from ..conftest import RECIPES

EXPECTED = {"manifest", "validation", "sft", "grpo", "parquet", "val_parquet", "eval"}


def _prepare(out: Path, *extra: str, recipe: str = "fake_hr1.yaml") -> Any:
    return CliRunner().invoke(cli, ["data", "prepare", str(RECIPES / recipe), "-p", "smoke", *extra,
                                    "--out", str(out), "--workers", "2", "--no-progress"])


def test_prepare_smoke_writes_every_artifact(tmp_path: Path, tiny: dict[str, str]) -> None:
    res = _prepare(tmp_path / "d")
    assert res.exit_code == 0, res.output
    arts = json.loads((tmp_path / "d" / "artifacts.json").read_text())
    assert set(arts) == EXPECTED and all(Path(p).is_absolute() and Path(p).exists() for p in arts.values())
    assert json.loads(res.stdout) == arts
    report = json.loads(Path(arts["validation"]).read_text())
    assert report["problems"] == 0 and report["ok"] == 32
    evals = [json.loads(line) for line in Path(arts["eval"]).read_text().splitlines()]
    assert len(evals) == report["ok"] - sum(1 for _ in open(arts["grpo"]))
    import pyarrow.parquet as pq
    assert pq.ParquetFile(arts["val_parquet"]).metadata.num_rows == len(evals)  # verl's val set = the test split
    assert {e["source"] for e in evals} == {"genimage", "fakeclue"}
    sft = [json.loads(line) for line in Path(arts["sft"]).read_text().splitlines()]
    from fakehr_orchestra.tinyworld.tiny_images import FAKE_WHY
    assert any(r["messages"][-1]["content"].startswith("<think>\n" + FAKE_WHY) for r in sft)  # FakeClue reasoning
    assert not list((tmp_path / "d").glob(".data-stage-*"))


def test_prepare_fakevlm_r1_derives_pairs(tmp_path: Path, tiny: dict[str, str]) -> None:
    res = _prepare(tmp_path / "v", "data.sources=[{name: fc, kind: fakeclue, path: .cache/tiny/data/FakeClue/"
                   "data_json/train.json, label_convention: fakeclue}]", "data.split.test_fraction=0.25",
                   recipe="fakevlm_r1.yaml")
    assert res.exit_code == 0, res.output
    arts = json.loads((tmp_path / "v" / "artifacts.json").read_text())
    first = json.loads(Path(arts["sft"]).read_text().splitlines()[0])
    assert "[Why fake]" in first["messages"][-1]["content"] and "<answer>" in first["messages"][-1]["content"]


def test_strict_failure_leaves_report_but_no_exports(tmp_path: Path, tiny: dict[str, str],
                                                     damaged_fakeclue: dict[str, Any]) -> None:
    out = tmp_path / "d"
    assert _prepare(out).exit_code == 0  # a complete earlier run
    src = (f"data.sources=[{{name: fc, kind: fakeclue, path: {damaged_fakeclue['train']}, "
           f"label_convention: fakeclue}}]")
    res = _prepare(out, src, "data.max_loss=1", "--strict")  # damaged on purpose: the loss guard is lifted
    assert res.exit_code == 1 and "strict: 9 of 18 records have problems" in res.output
    assert not (out / "artifacts.json").exists()  # the stale one is gone too
    assert json.loads((out / "validation.json").read_text())["problems"] == 9
    assert not list(out.glob(".*.tmp")) and not list(out.glob(".data-stage-*"))
    # without --strict the same data goes through, the bad records skipped
    res = _prepare(out, src, "data.max_loss=1")
    assert res.exit_code == 0, res.output
    assert sum(1 for _ in open(out / "grpo.jsonl")) + sum(1 for _ in open(out / "eval.jsonl")) == 9


def test_prepare_errors_are_messages(tmp_path: Path, tiny: dict[str, str]) -> None:
    res = _prepare(tmp_path / "d", "data.sources=[{name: x, kind: jsonl, path: /does/not/exist, "
                                   "label_convention: text}]")
    assert res.exit_code == 1 and "does not exist" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "d" / "artifacts.json").exists()
    res = _prepare(tmp_path / "d", "data.sources=[{name: x, kind: jsonl, path: a.jsonl, label_convention: nope}]")
    assert res.exit_code == 2 and "label_convention" in res.output


def test_subcommands_chain(tmp_path: Path, tiny: dict[str, str]) -> None:
    run = CliRunner().invoke
    m1, m2, m3 = (tmp_path / f"m{i}.jsonl" for i in range(3))
    res = run(cli, ["data", "import", "--kind", "genimage", "--path", tiny["genimage"], "--label-convention",
                    "genimage", "--workers", "1", "--out", str(m1)])
    assert res.exit_code == 0, res.output
    assert run(cli, ["data", "split", str(m1), "--test-fraction", "0.5", "--out", str(m2)]).exit_code == 0
    res = run(cli, ["data", "validate", str(m2), "--out", str(m3), "--report", str(tmp_path / "r.json"), "--strict"])
    assert res.exit_code == 0 and "genimage" in res.output
    res = run(cli, ["data", "export", str(RECIPES / "fake_hr1.yaml"), "-p", "smoke", "--manifest", str(m3),
                    "--out", str(tmp_path / "x"), "--only", "eval,sft"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["eval.jsonl", "sft.jsonl"]


def test_one_pass_stage_equals_the_verb_chain_and_its_serial_form(tmp_path: Path, tiny: dict[str, str]) -> None:
    """The stage writes everything in one final pass (exports in a child process when it has workers); the
    `data import/split/validate/export` verbs take the long way, one file at a time. Same records, same bytes."""
    import pyarrow.parquet as pq

    from fakehr_orchestra.data.stage import prepare
    from fakehr_orchestra.recipe import load_recipe

    copy = tmp_path / "copy.png"  # a byte-identical copy: one record becomes a duplicate (or a leak)
    copy.write_bytes(next(Path(tiny["genimage"]).rglob("*.png")).read_bytes())
    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({"image": str(copy), "label": "fake"}) + "\n"
                     + json.dumps({"image": str(tmp_path / "gone.png"), "label": "real"}) + "\n")
    sources = ("data.sources=[{name: genimage, kind: genimage, path: %s, label_convention: genimage}, "
               "{name: extra, kind: jsonl, path: %s, label_convention: text}]" % (tiny["genimage"], extra))
    model = load_recipe(RECIPES / "fake_hr1.yaml", ["data.max_loss=1.0", sources, "data.split.test_fraction=0.3"],
                        profile="smoke").model
    outs = {n: prepare(model, tmp_path / n, workers=n_workers) for n, n_workers in (("serial", 1), ("child", 2))}

    run = CliRunner().invoke
    chain = tmp_path / "chain"
    m = [chain / f"m{i}.jsonl" for i in range(4)]
    chain.mkdir()
    for i, (kind, path, convention) in enumerate((("genimage", tiny["genimage"], "genimage"),
                                                  ("jsonl", str(extra), "text"))):
        res = run(cli, ["data", "import", "--kind", kind, "--path", path, "--label-convention", convention,
                        "--name", "genimage" if i == 0 else "extra", "--max-loss", "1", "--workers", "1",
                        "--out", str(m[i])])
        assert res.exit_code == 0, res.output
    rows = [json.loads(line) for f in m[:2] for line in f.read_text().splitlines()]
    for new_id, row in enumerate(rows):
        row["id"] = new_id
    m[2].write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert run(cli, ["data", "split", str(m[2]), "--test-fraction", "0.3", "--out", str(m[3])]).exit_code == 0
    res = run(cli, ["data", "validate", str(m[3]), "--out", str(chain / "manifest.jsonl"), "--report",
                    str(chain / "validation.json")])
    assert res.exit_code == 0, res.output
    res = run(cli, ["data", "export", str(RECIPES / "fake_hr1.yaml"), "-p", "smoke", "--manifest",
                    str(chain / "manifest.jsonl"), "--out", str(chain)])
    assert res.exit_code == 0, res.output

    def records(path: Path) -> list[dict]:
        return [json.loads(line) for line in path.read_text().splitlines()]

    serial, child = outs["serial"], outs["child"]
    statuses = {r["status"] for r in records(Path(serial["manifest"]))}
    assert {"ok", "missing"} <= statuses and statuses & {"duplicate", "leaked"}, statuses
    for name in ("manifest", "sft", "grpo", "eval"):
        assert Path(serial[name]).read_bytes() == Path(child[name]).read_bytes(), name
        assert records(Path(serial[name])) == records(chain / Path(serial[name]).name), name
    assert json.loads(Path(serial["validation"]).read_text()) == json.loads(Path(child["validation"]).read_text())
    assert json.loads(Path(serial["validation"]).read_text())["status"] == \
        json.loads((chain / "validation.json").read_text())["status"]
    for name in ("parquet", "val_parquet"):
        want = pq.read_table(serial[name]).to_pylist()
        assert want and want == pq.read_table(child[name]).to_pylist()
        assert want == pq.read_table(chain / Path(serial[name]).name).to_pylist()


def _modules_after_an_export(out: str) -> list[str]:
    """In the export child, after its warm-up: write a parquet as the stage does, report the pandas modules."""
    import sys

    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": pa.array(["x", None]), "b": pa.array([[1], []])}), out)
    return sorted(m for m in sys.modules if m == "pandas" or m.startswith("pandas."))


def test_the_export_child_writes_parquet_without_importing_pandas(tmp_path) -> None:
    """pyarrow imports pandas on its first conversion of Python objects (~0.35 s of CPU the image workers need);
    the export child refuses it, and pyarrow still converts and writes."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from fakehr_orchestra.data import stage

    out = str(tmp_path / "t.parquet")
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        pool.submit(stage._warm_up).result()
        assert pool.submit(_modules_after_an_export, out).result() == []
    import pyarrow.parquet as pq
    assert pq.read_table(out).to_pylist() == [{"a": "x", "b": [1]}, {"a": None, "b": []}]
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:  # the guard is what keeps it out
        assert pool.submit(_modules_after_an_export, out).result() != []
