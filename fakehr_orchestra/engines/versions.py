"""Framework versions and the table of what changed between them.

Every known difference between framework versions lives in TRANSLATIONS, one entry each; renderers call
`translate()` and report the entries they applied. Installed versions are read from package metadata, which does
not import the frameworks (importing verl or swift takes seconds and pulls in torch).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Literal, Optional

Framework = Literal["swift", "verl"]
DISTRIBUTIONS: dict[str, str] = {"swift": "ms-swift", "verl": "verl"}


def parse_version(text: str) -> tuple[int, ...]:
    """'4.6.0' -> (4, 6, 0); '0.9.1.dev0' -> (0, 9, 1); '3.12' -> (3, 12)."""
    parts: list[int] = []
    for piece in str(text).split("."):
        digits = "".join(ch for ch in piece if ch.isdigit()) if piece[:1].isdigit() else ""
        if not digits:
            break
        parts.append(int(digits))
    if not parts:
        raise ValueError(f"not a version: {text!r}")
    return tuple(parts)


def installed_version(framework: str) -> str | None:
    try:
        return metadata.version(DISTRIBUTIONS[framework])
    except metadata.PackageNotFoundError:
        return None


# The versions whose spellings tests/engines/test_translations.py proves: against the installed frameworks, against
# verl 0.8's own config and migration code (from its wheel), and ms-swift 3.x as the seed's README runs it.
CHECKED: dict[str, tuple[tuple[int, ...], ...]] = {"swift": ((3,), (4,)), "verl": ((0, 8), (0, 9))}


def checked(framework: str, version: str) -> bool:
    parts = parse_version(version)
    return any(parts[:len(prefix)] == prefix for prefix in CHECKED[framework])


def parse_versions_option(text: str | None) -> dict[str, str]:
    """'swift=3.12,verl=0.8' -> {'swift': '3.12', 'verl': '0.8'} (validated; only versions whose spellings are
    proven can be asked for: rendering for another would be a guess)."""
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, eq, value = item.partition("=")
        name = name.strip()
        if not eq or name not in DISTRIBUTIONS:
            raise ValueError(f"--versions takes swift=X,verl=Y; got {item!r}")
        parse_version(value.strip())
        if not checked(name, value.strip()):
            known = ", ".join(".".join(map(str, p)) + ".x" for p in CHECKED[name])
            raise ValueError(f"--versions {name}={value.strip()}: fakehr-orchestra cannot check what {name} "
                             f"{value.strip()} reads, so it will not guess (checked: {known})")
        out[name] = value.strip()
    return out


@dataclass(frozen=True)
class TargetVersions:
    """The versions a plan is rendered for, and where each came from (installed / --versions / recipe)."""

    swift: str
    verl: str
    origin: dict[str, str]

    @classmethod
    def resolve(cls, explicit: dict[str, str], written_for: dict[str, str]) -> "TargetVersions":
        chosen, origin = {}, {}
        for fw in DISTRIBUTIONS:
            if fw in explicit:
                chosen[fw], origin[fw] = explicit[fw], "--versions"
            elif (found := installed_version(fw)) is not None:
                chosen[fw], origin[fw] = found, "installed"
            else:
                chosen[fw], origin[fw] = written_for[fw], "recipe written_for (not installed)"
        return cls(swift=chosen["swift"], verl=chosen["verl"], origin=origin)


@dataclass(frozen=True)
class Translation:
    """One renamed flag / env var / config key: `old` is read before `since`, `new` from `since` on. `new` None: from
    `since` on nothing reads it, so rendering for such a version leaves it out (and says so).

    Every entry is proven against the installed frameworks by tests/engines/test_translations.py."""

    framework: Framework
    kind: Literal["flag", "env", "key"]
    old: str
    new: Optional[str]
    since: str
    why: str

    def describe(self, forward: bool) -> str:
        if self.new is None:
            return f"{self.framework} {self.kind} {self.old} dropped ({self.why})"
        a, b = (self.old, self.new) if forward else (self.new, self.old)
        return f"{self.framework} {self.kind} {a} -> {b} ({self.why})"


TRANSLATIONS: tuple[Translation, ...] = (
    Translation("swift", "flag", "train_type", "tuner_type", "4.0",
                "ms-swift 4 renamed --train_type to --tuner_type and does not alias the old name"),
    Translation("swift", "env", "SIZE_FACTOR", None, "4.0",
                "ms-swift 4 and qwen-vl-utils 0.0.14 read no SIZE_FACTOR: images are resized to multiples of patch "
                "x merge (28 for Qwen2.5-VL); it has no effect"),
    Translation("verl", "key", "custom_reward_function", "reward.custom_reward_function", "0.9",
                "verl 0.9 reads reward.custom_reward_function; main_ppo no longer migrates the top-level keys"),
    Translation("verl", "key", "reward_model.reward_manager", "reward.reward_manager.name", "0.9",
                "verl 0.9 reads reward.reward_manager.name; the legacy key is no longer migrated"),
    Translation("verl", "key", "reward_model.reward_loop_source", "reward.reward_manager.source", "0.9",
                "verl 0.9 reads reward.reward_manager.source"),
    Translation("verl", "key", "reward_model.reward_loop_module_path", "reward.reward_manager.module.path", "0.9",
                "verl 0.9 reads reward.reward_manager.module.path"),
)


def _matches(name: str, prefix: str, kind: str) -> bool:
    return name == prefix or (kind == "key" and name.startswith(prefix + "."))


def translate(framework: Framework, kind: str, name: str,
              target: str) -> tuple[Optional[str], Translation | None, bool]:
    """The spelling of `name` that version `target` reads, whichever version's spelling `name` is in; None when
    `target` reads no such thing (a dropped entry).

    Normalising to the target (rather than translating from a declared source version) lets one profile or override
    serve recipes written for different versions. Returns (name or None, the entry applied or None, forward?).
    Keys may carry a Hydra '+', which is kept.
    """
    plus = "+" if name.startswith("+") else ""
    bare = name[1:] if plus else name
    dst = parse_version(target)
    for entry in TRANSLATIONS:
        if entry.framework != framework or entry.kind != kind:
            continue
        newer = dst >= parse_version(entry.since)
        if newer and _matches(bare, entry.old, kind):
            if entry.new is None:
                return None, entry, True
            return plus + entry.new + bare[len(entry.old):], entry, True
        if not newer and entry.new is not None and _matches(bare, entry.new, kind):
            return plus + entry.old + bare[len(entry.new):], entry, False
    return name, None, True


def legacy_replacement(framework: Framework, kind: str, name: str, version: str) -> Translation | None:
    """If `name` is a spelling that `version` no longer reads, the entry that says what replaced it."""
    bare = name.lstrip("+")
    for entry in TRANSLATIONS:
        if entry.framework == framework and entry.kind == kind and _matches(bare, entry.old, kind) \
                and parse_version(version) >= parse_version(entry.since):
            return entry
    return None
