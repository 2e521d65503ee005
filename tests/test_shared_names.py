"""The thing-name rule exists once in code; the JSON Schemas' copy is pinned equal to it."""

from __future__ import annotations

import json

import pytest

from shared.names import THING_NAME_PATTERN, thing_name
from transform.validation import SCHEMA_DIR


def test_the_schema_pattern_is_the_code_pattern() -> None:
    common = json.loads((SCHEMA_DIR / "common.json").read_text(encoding="utf-8"))
    assert common["definitions"]["thingName"]["pattern"] == f"^{THING_NAME_PATTERN}$"


@pytest.mark.parametrize("name", ["gw-berlin-03", "legacy_plc:01", "a", "x" * 128])
def test_valid_thing_names_are_kept(name: str) -> None:
    assert thing_name(name) == name


@pytest.mark.parametrize(
    "value",
    ["", "x" * 129, "cam lobby", "thing/1", "thing\n", "\uff54hing", "gw-01\u0000", 42, None],
)
def test_anything_else_is_not_a_thing_name(value: object) -> None:
    assert thing_name(value) is None
