"""Values rendered for verl reach it unchanged through Hydra's own override parser."""

from __future__ import annotations

import pytest

from fakehr_orchestra.engines.common import RenderContext
from fakehr_orchestra.engines.verl import hydra_value
from fakehr_orchestra.engines.versions import TargetVersions
from tests.conftest import require_module

VALUES = ["plain", "<think>\\n", "it's", "back\\", "back\\'q", "a b, c", "[x]", "{y}", "=", "\\\\server\\share",
          "ünïcode", "", "trailing\\\\"]


@pytest.fixture
def ctx():
    return RenderContext(TargetVersions("4.6", "0.9", {}), {"swift": "4.6", "verl": "0.9"})


@pytest.mark.parametrize("value", VALUES)
def test_strings_survive_hydra_parsing(ctx, value):
    require_module("hydra")
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_override(f"k={hydra_value(value, ctx)}")
    assert parsed.value() == value


def test_structured_values(ctx):
    require_module("hydra")
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    assert parser.parse_override(f"k={hydra_value(['console', 'a b'], ctx)}").value() == ["console", "a b"]
    assert parser.parse_override(f"k={hydra_value(True, ctx)}").value() is True
    assert parser.parse_override(f"k={hydra_value(0.6, ctx)}").value() == 0.6
    assert parser.parse_override(f"k={hydra_value(None, ctx)}").value() is None
