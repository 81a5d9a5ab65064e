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


def row(rec: Record, settings: ExportSettings) -> dict[str, Any]:
    if settings.images == "bytes":
        with open(rec.path, "rb") as handle:
            image: dict[str, Any] = {"bytes": handle.read()}
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
    """Rows buffered up to one chunk, then written as one row group: bounded memory for any size."""

    def __init__(self, handle: Any, settings: ExportSettings) -> None:
        import pyarrow.parquet as pq

        sized = settings.max_pixels is not None or settings.min_pixels is not None
        self.schema = schema(settings.images, SIZE_KEYS if sized else ())
        self.writer = pq.ParquetWriter(handle, self.schema)
        self.rows: list[dict[str, Any]] = []
        self.chunk_size = settings.chunk_size

    def add(self, item: dict[str, Any]) -> None:
        self.rows.append(item)
        if len(self.rows) >= self.chunk_size:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self.flush()
        self.writer.close()
