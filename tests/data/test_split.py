from __future__ import annotations

from pathlib import Path

import pytest

from fakehr_orchestra.data.manifest import Record, iter_manifest, write_manifest
from fakehr_orchestra.data.split import split_manifest


def _records(n: int) -> list[Record]:
    out = []
    for i in range(n):
        src = "a" if i % 3 else "b"
        out.append(Record(id=i, path=f"/x/{i}.png", label="fake" if i % 2 else "real", label_raw=i % 2,
                          label_convention="one_is_fake", source=src, hash=f"{i:032x}"))
    out.append(Record(id=n, path="/x/forced.png", label="real", label_raw=0, label_convention="one_is_fake",
                      source="a", hash="f" * 32, split="train"))
    out.append(Record(id=n + 1, path="/x/bad.png", label=None, label_raw=7, label_convention="one_is_fake",
                      source="a", status="bad_label"))
    return out


def _split(tmp_path: Path, fraction: float, seed: int, records: list[Record]) -> dict[int, str | None]:
    src, dst = tmp_path / f"in{seed}.jsonl", tmp_path / f"out{seed}.jsonl"
    write_manifest(src, records)
    split_manifest(src, dst, fraction, seed)
    return {r.id: r.split for r in iter_manifest(dst)}


def test_stratified_deterministic_and_order_independent(tmp_path: Path) -> None:
    recs = _records(300)
    got = _split(tmp_path, 0.2, 0, recs)
    for src in ("a", "b"):
        for lab in ("real", "fake"):
            ids = [r.id for r in recs[:300] if r.source == src and r.label == lab]
            assert sum(got[i] == "test" for i in ids) == round(len(ids) * 0.2)
    assert got[300] == "train" and got[301] is None  # forced split kept, bad record untouched
    (tmp_path / "again").mkdir()
    assert got == _split(tmp_path / "again", 0.2, 0, recs)
    assert got != _split(tmp_path, 0.2, 1, recs)
    # same images in another order (new ids) land on the same side: the key is the content hash
    shuffled = [Record(**{**r.__dict__, "id": k}) for k, r in enumerate(reversed(recs[:300]))]
    (tmp_path / "s").mkdir()
    got_s = _split(tmp_path / "s", 0.2, 0, shuffled)
    assert {r.hash: got_s[r.id] for r in shuffled} == {r.hash: got[r.id] for r in recs[:300]}


def test_zero_fraction_and_bad_fraction(tmp_path: Path) -> None:
    assert set(_split(tmp_path, 0.0, 0, _records(20)).values()) == {"train", None}
    with pytest.raises(ValueError):
        _split(tmp_path, 1.0, 0, _records(4))
