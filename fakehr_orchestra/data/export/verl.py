"""verl parquet (RLHFDataset): data_source, prompt (chat list, user text with one <image>), images
([{"image": abs path}] or [{"bytes": ...}]), ability, reward_model {"style": "rule", "ground_truth": real|fake},
extra_info. The schema is explicit so every row group agrees whatever the values (e.g. a missing category)."""

from __future__ import annotations

from typing import Any

from ..manifest import Record
from .settings import ExportSettings
from .swift import parquet_prompt

ABILITY = "fake_detection"


SIZE_KEYS = ("resized_height", "resized_width")


def budget(settings: ExportSettings, rec: Record) -> dict[str, int]:
    """The recipe's image budget as image-dict keys: verl passes each dict to qwen-vl-utils' fetch_image
    (verl/utils/dataset/vision_utils.py), which takes `resized_height` / `resized_width` as given (rounded to the
    family's image factor: 28 Qwen2.5-VL, 32 Qwen3-VL). They are the size ms-swift gives the image
    (fakehr_orchestra/vision.py), so SFT, GRPO and eval see it alike. Without a budget the keys are absent and
    verl uses the processor's own limits, as ms-swift does."""
    if settings.max_pixels is None and settings.min_pixels is None:
        return {}
    from ...vision import final_size

    height, width = final_size(int(rec.width), int(rec.height), settings.max_pixels, settings.min_pixels,
                               settings.image_factor)
    return {"resized_height": height, "resized_width": width}


def schema(images: str, pixels: tuple[str, ...] = ()) -> Any:
    import pyarrow as pa

    first = ("bytes", pa.binary()) if images == "bytes" else ("image", pa.string())
    image = pa.struct([first] + [(name, pa.int64()) for name in pixels])
    return pa.schema([
        ("data_source", pa.string()),
        ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("images", pa.list_(image)),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
        ("extra_info", pa.struct([("index", pa.int64()), ("split", pa.string()), ("source", pa.string()),
                                  ("category", pa.string()), ("answer_format", pa.string()),
                                  ("hash", pa.string()), ("image", pa.string())])),
    ])


def _read(path: str, nbytes: int | None) -> bytes:
    """The image's bytes through the one bounded reader: a regular file, no bigger than the import found it (a file
    swapped for a FIFO or grown since is an error, not a hang or a different image)."""
    from ...bounded import BoundedReadError, read_file
    from .. import DataError

    try:
        return read_file(path, nbytes if nbytes is not None else 2**31)
    except BoundedReadError as exc:
        raise DataError(f"cannot embed the image: {exc}; run the import again") from None


def row(rec: Record, settings: ExportSettings) -> dict[str, Any]:
    if settings.images == "bytes":
        image: dict[str, Any] = {"bytes": _read(rec.path, rec.nbytes)}
    else:
        image = {"image": rec.path}
    image.update(budget(settings, rec))
    return {
        "data_source": rec.source, "prompt": parquet_prompt(settings), "images": [image], "ability": ABILITY,
        "reward_model": {"style": "rule", "ground_truth": rec.label},
        "extra_info": {"index": rec.id, "split": rec.split, "source": rec.source, "category": rec.category,
                       "answer_format": settings.answer_format, "hash": rec.hash, "image": rec.path},
    }


class ParquetSink:
    """Records buffered as columns up to one chunk, then written as one row group: bounded memory for any size.

    Columns, not rows: building nested rows with `Table.from_pylist` cost ~90 us per record, most of the export.
    The parts every row shares (prompt, ability, reward style, answer format) are built once per row group."""

    def __init__(self, handle: Any, settings: ExportSettings) -> None:
        import pyarrow.parquet as pq

        self.sized = settings.max_pixels is not None or settings.min_pixels is not None
        self.schema = schema(settings.images, SIZE_KEYS if self.sized else ())
        self.writer = pq.ParquetWriter(handle, self.schema)
        self.settings = settings
        self.chunk_size = settings.chunk_size
        self.sample: dict[str, Any] | None = None
        self._sizes: dict[tuple[int, int], dict[str, int]] = {}
        self._reset()

    def _reset(self) -> None:
        self.records: list[Record] = []

    def add(self, records: list[Record]) -> None:
        if self.sample is None and records:
            self.sample = row(records[0], self.settings)
        self.records.extend(records)
        if len(self.records) >= self.chunk_size:
            self.flush()

    def _sizes_of(self, records: list[Record]) -> list[dict[str, int]]:
        sizes = self._sizes
        if len(sizes) >= 65536:  # bounded: a real data set has many distinct sizes
            sizes.clear()
        out = []
        for rec in records:
            size = sizes.get((rec.width, rec.height))
            if size is None:
                size = sizes[(rec.width, rec.height)] = budget(self.settings, rec)
            out.append(size)
        return out

    def flush(self) -> None:
        import pyarrow as pa

        recs = self.records
        n = len(recs)
        if not n:
            return
        fields = {f.name: f.type for f in self.schema}
        image_type = fields["images"].value_type
        if self.settings.images == "bytes":
            image_parts = [pa.array([_read(rec.path, rec.nbytes) for rec in recs], pa.binary())]
        else:
            image_parts = [pa.array([rec.path for rec in recs], pa.string())]
        if self.sized:
            sizes = self._sizes_of(recs)
            image_parts += [pa.array([s["resized_height"] for s in sizes], pa.int64()),
                            pa.array([s["resized_width"] for s in sizes], pa.int64())]
        images = pa.StructArray.from_arrays(image_parts, fields=list(image_type))
        strings = {name: pa.array([getattr(rec, name) for rec in recs], pa.string())
                   for name in ("source", "label", "split", "category", "hash", "path")}
        extra = pa.StructArray.from_arrays(
            [pa.array([rec.id for rec in recs], pa.int64()), strings["split"], strings["source"],
             strings["category"], pa.repeat(pa.scalar(self.settings.answer_format, pa.string()), n),
             strings["hash"], strings["path"]],
            fields=list(fields["extra_info"]))
        reward = pa.StructArray.from_arrays([pa.repeat(pa.scalar("rule", pa.string()), n), strings["label"]],
                                            fields=list(fields["reward_model"]))
        table = pa.Table.from_arrays([
            strings["source"],
            pa.repeat(pa.scalar(parquet_prompt(self.settings), fields["prompt"]), n),
            pa.ListArray.from_arrays(pa.array(range(n + 1), pa.int32()), images, type=fields["images"]),
            pa.repeat(pa.scalar(ABILITY, pa.string()), n),
            reward, extra], schema=self.schema)
        self.writer.write_table(table)
        self._reset()

    def close(self) -> None:
        self.flush()
        self.writer.close()
