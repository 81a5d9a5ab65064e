"""The one label normaliser. Every data set writes labels its own way; the convention is always declared, never
guessed, and recorded next to the normalised label.

Conventions:
  text          "real" / "fake" in any case (the seed's eval jsonl, our manifests)
  fakeclue      0 = fake, 1 = real (FakeVLM's FakeClue)
  genimage      folder names: "ai" = fake, "nature" = real
  one_is_fake   1 = fake, 0 = real (e.g. Veritas)
  one_is_real   1 = real, 0 = fake
  bool_is_fake  True = fake, False = real
  folders       label-named folders: the folder-name -> label map the recipe declares (`label_folders`)
"""

from __future__ import annotations

from typing import Any, Literal

Label = Literal["real", "fake"]
CONVENTIONS = ("text", "fakeclue", "genimage", "one_is_fake", "one_is_real", "bool_is_fake", "folders")
LABELS: tuple[Label, Label] = ("real", "fake")


class LabelError(ValueError):
    """A label that does not fit its declared convention."""


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return int(value.strip())
    return None


def normalize_label(value: Any, convention: str = "text", folders: dict[str, str] | None = None) -> Label:
    """Map a raw label to 'real' / 'fake' under `convention`; raise LabelError otherwise. `folders`: the declared
    folder-name -> label map of the `folders` convention."""
    if convention == "folders":
        if not folders:
            raise LabelError("convention 'folders' needs the declared label_folders map")
        if isinstance(value, str) and folders.get(value) in LABELS:
            return folders[value]  # type: ignore[return-value]
        raise LabelError(f"folder {value!r} is not a declared label folder (label_folders: "
                         f"{', '.join(f'{k}: {v}' for k, v in folders.items())})")
    if convention == "text":
        if isinstance(value, str) and value.strip().lower() in LABELS:
            return value.strip().lower()  # type: ignore[return-value]
    elif convention == "genimage":
        if isinstance(value, str) and value.strip().lower() in ("ai", "nature"):
            return "fake" if value.strip().lower() == "ai" else "real"
    elif convention in ("fakeclue", "one_is_fake", "one_is_real"):
        number = _as_int(value)
        if number in (0, 1):
            fake_value = 1 if convention == "one_is_fake" else 0
            return "fake" if number == fake_value else "real"
    elif convention == "bool_is_fake":
        if isinstance(value, bool):
            return "fake" if value else "real"
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return "fake" if value.strip().lower() == "true" else "real"
    else:
        raise LabelError(f"unknown label convention {convention!r}; known: {', '.join(CONVENTIONS)}")
    raise LabelError(f"label {value!r} does not fit convention {convention!r}")


def normalize_ground_truth(value: Any, convention: str | None = None) -> Label:
    """Ground truth as a reward receives it: real|fake text, True/False (True = fake), or 0/1 with a convention.

    A bare 0/1 without a declared convention is refused: FakeClue and Veritas disagree on what 1 means.
    """
    if convention:
        return normalize_label(value, convention)
    if isinstance(value, bool):
        return normalize_label(value, "bool_is_fake")
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return normalize_label(value, "bool_is_fake")
    if _as_int(value) is not None:
        raise LabelError(f"ground truth {value!r} is a number: declare its convention "
                         f"(fakeclue: 0 = fake; one_is_fake: 1 = fake)")
    return normalize_label(value, "text")
