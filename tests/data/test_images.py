from __future__ import annotations

from pathlib import Path

from fakehr_orchestra.data.images import ImageChecker, check_image

from .conftest import noise_png, png_bytes, write


def test_check_image_reports_each_kind_of_damage(tmp_path: Path) -> None:
    ok = write(tmp_path / "ok.png", png_bytes(1, 40))
    import io
    import os

    from PIL import Image
    buf = io.BytesIO()
    Image.frombytes("RGB", (128, 128), os.urandom(128 * 128 * 3)).save(buf, format="JPEG")
    jpeg = buf.getvalue()
    cases = {
        "ok": check_image(ok),
        "missing": check_image(str(tmp_path / "nope.png")),
        "dir": check_image(str(tmp_path)),
        "empty": check_image(write(tmp_path / "e.png", b"")),
        "garbage": check_image(write(tmp_path / "g.png", b"hello")),
        "trunc_png": check_image(write(tmp_path / "t.png", noise_png()[:6000])),
    }
    assert cases["ok"]["status"] == "ok" and (cases["ok"]["width"], cases["ok"]["height"]) == (40, 40)
    assert cases["ok"]["format"] == "PNG" and len(cases["ok"]["hash"]) == 32
    assert cases["missing"] == {"status": "missing", "reason": "file not found"}
    assert cases["dir"]["status"] == "missing"
    assert cases["empty"]["status"] == "corrupt" and cases["empty"]["reason"] == "empty file"
    assert cases["garbage"]["status"] == "corrupt" and "does not decode" in cases["garbage"]["reason"]
    assert cases["trunc_png"]["status"] == "corrupt"
    # a truncated JPEG passes the header check but not the full decode
    tj = write(tmp_path / "t.jpg", jpeg[: len(jpeg) // 2])
    assert check_image(tj, "header")["status"] == "ok"
    full = check_image(tj, "full")
    assert full["status"] == "corrupt" and "truncated" in full["reason"]


def test_parallel_checker_keeps_order_and_matches_serial(tmp_path: Path) -> None:
    paths = [write(tmp_path / f"{i}.png", png_bytes(i, 16)) if i % 5 else str(tmp_path / f"missing{i}.png")
             for i in range(53)]
    chunks = [paths[i:i + 7] for i in range(0, len(paths), 7)]
    with ImageChecker(workers=2, batch=3) as par:
        got = [(items, checks) for items, checks in par.check_stream(iter(chunks))]
    assert [i for items, _ in got for i in items] == paths
    serial = [check_image(p) for p in paths]
    assert [c for _, checks in got for c in checks] == serial
    assert sum(c["status"] == "missing" for c in serial) == 11


def test_both_modes_refuse_a_png_whose_chunk_crc_is_wrong(tmp_path: Path) -> None:
    """Full mode decodes instead of calling verify(), so it checks PNG CRCs itself (decoding skips them): a flipped
    byte inside the compressed pixels decodes to wrong pixels without any error, and only the CRC tells."""
    blob = bytearray(noise_png())
    idat = blob.index(b"IDAT")
    blob[idat + 40] ^= 0x01  # inside the IDAT data: its CRC no longer matches
    bad = write(tmp_path / "crc.png", bytes(blob))
    for mode in ("header", "full"):
        result = check_image(bad, mode)
        assert result["status"] == "corrupt" and "checksum" in result["reason"], (mode, result)
    good = write(tmp_path / "good.png", noise_png())
    assert check_image(good, "full")["status"] == "ok"
    no_end = write(tmp_path / "noend.png", noise_png()[:-12])  # IEND chunk cut off
    assert check_image(no_end, "full")["status"] == "corrupt"
