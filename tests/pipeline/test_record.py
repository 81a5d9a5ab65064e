"""A stage's record: its transitions write what the manifest has always held, and an older record round-trips."""

from __future__ import annotations

import json

from fakehr_orchestra.pipeline.record import StageRecord

RUNNER = {"pid": 12, "host": "node1", "pid_start": 345}
ARTIFACTS = {"checkpoint": {"path": "/r/sft/ckpt", "sha256": "ab"}}


def written(record: StageRecord) -> str:
    return json.dumps(record.to_dict(), indent=2, sort_keys=True)  # as RunDir.save writes it


def test_an_older_record_round_trips_byte_for_byte() -> None:
    old = {"status": "failed", "plan_digest": "d1", "attempts": 2, "started": "t0", "ended": "t1",
           "exit_code": 130, "failed_step": "sft", "log": "/r/logs/sft.log", "seconds": 1.5,
           "inputs": {"sft.dataset": "/r/data/sft.jsonl"}, "runner": RUNNER, "superseded": ["/r/sft.superseded-1"],
           "some_future_key": {"kept": True}, "error": None}
    assert written(StageRecord.from_dict(old)) == json.dumps(old, indent=2, sort_keys=True)
    assert written(StageRecord.from_dict({"status": "pending"})) == json.dumps({"status": "pending"}, indent=2)


def test_a_new_attempt_clears_how_the_last_one_ended_and_keeps_the_rest() -> None:
    record = StageRecord.from_dict({"status": "failed", "plan_digest": "d0", "attempts": 1, "ended": "t1",
                                    "exit_code": 1, "failed_step": "sft", "seconds": 3.0, "error": None,
                                    "log": "/r/logs/sft.log", "warnings": ["w"]})
    record.mark_running("d1", {"k": "v"}, "/r/plans/sft.json", RUNNER)
    data = record.to_dict()
    assert set(data) == {"status", "plan_digest", "attempts", "started", "inputs", "plans", "runner", "log",
                         "warnings"}
    assert data["status"] == "running" and data["attempts"] == 2 and data["plan_digest"] == "d1"
    assert StageRecord().to_dict() == {"status": "pending"}
    fresh = StageRecord()
    fresh.mark_running("d", {}, "p", RUNNER)
    assert fresh.attempts == 1


def test_each_ending_records_what_it_is_given_and_nothing_else() -> None:
    record = StageRecord()
    record.mark_running("d", {}, "p", RUNNER)
    record.mark_failed(interrupted=True, exit_code=143, seconds=2.0)
    assert {k: v for k, v in record.to_dict().items() if k not in ("started", "ended")} == {
        "status": "interrupted", "plan_digest": "d", "attempts": 1, "inputs": {}, "plans": "p", "runner": RUNNER,
        "exit_code": 143, "seconds": 2.0}
    record.mark_failed(exit_code=0, error="")  # a collector's error may be empty: still recorded, as before
    assert record.to_dict()["error"] == "" and record.status == "failed" and record.exit_code == 0
    record.mark_done(ARTIFACTS, seconds=4.0)
    data = record.to_dict()
    assert data["status"] == "done" and data["exit_code"] == 0 and data["artifacts"] == ARTIFACTS
    assert data["error"] == ""  # done does not clear an earlier error: only a new attempt does
    skipped = StageRecord()
    skipped.mark_skipped("nothing to merge", {})
    assert {k for k in skipped.to_dict()} == {"status", "reason", "ended", "artifacts"} and skipped.finished


def test_service_entries_appear_only_when_a_stage_has_services() -> None:
    record = StageRecord()
    assert "services" not in record.to_dict()
    record.service_entries()["critic"] = {"status": "starting"}
    assert record.to_dict()["services"] == {"critic": {"status": "starting"}}
