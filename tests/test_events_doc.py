"""docs/events.md shows what the code emits: every example event in it is one the transform
produces from a sample (with SPLUNK_INDEX=iot_security), keys in the same order. An example may
cut a long list short, as its text then says; nothing else may differ."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support import fixture_paths, record_bytes, report_events, transform
from transform.config import Settings
from transform.sourcetypes import ALL_SOURCETYPES, UNPARSED

DOC = Path(__file__).resolve().parent.parent / "docs" / "events.md"
TEXT = DOC.read_text(encoding="utf-8")


def _examples() -> list[tuple[int, dict[str, Any]]]:
    """Every HEC event in the document: pretty ```json blocks and compact lines in ```text."""
    found: list[tuple[int, dict[str, Any]]] = []
    for block in re.finditer(r"```(json|text)\n(.*?)\n```", TEXT, re.S):
        line = TEXT[: block.start()].count("\n") + 2
        pieces = [block[2]] if block[1] == "json" else block[2].splitlines()
        for offset, piece in enumerate(pieces):
            try:
                value = json.loads(piece)
            except ValueError:
                continue
            if isinstance(value, dict) and "sourcetype" in value and "event" in value:
                found.append((line + (offset if block[1] == "text" else 0), value))
    return found


EXAMPLES = _examples()
PRODUCED = [
    event
    for path in fixture_paths()
    for event in report_events(
        transform([record_bytes(path)], settings=Settings(default_index="iot_security"))
    )
]


def shows(example: object, produced: object) -> bool:
    """``example`` is ``produced``: same keys in the same order, lists perhaps cut short."""
    if isinstance(example, dict):
        return (
            isinstance(produced, dict)
            and list(example) == list(produced)
            and all(shows(example[key], produced[key]) for key in example)
        )
    if isinstance(example, list):
        return (
            (isinstance(produced, list) and 0 < len(example) <= len(produced))
            or example == produced == []
        ) and all(shows(a, b) for a, b in zip(example, produced, strict=False))
    return example == produced


def test_the_document_shows_an_example_of_every_sourcetype_but_unparsed() -> None:
    assert {example["sourcetype"] for _, example in EXAMPLES} >= ALL_SOURCETYPES - {UNPARSED}


@pytest.mark.parametrize(("line", "example"), EXAMPLES, ids=[f"line{line}" for line, _ in EXAMPLES])
def test_every_example_event_is_one_the_transform_produces(
    line: int, example: dict[str, Any]
) -> None:
    assert any(shows(example, produced) for produced in PRODUCED), (
        f"docs/events.md line {line}: no sample produces this event; the transform now emits "
        "e.g. "
        + orjson.dumps(
            next((p for p in PRODUCED if p["sourcetype"] == example["sourcetype"]), {})
        ).decode()[:400]
    )


def test_the_checker_tells_a_reordered_or_changed_event_apart() -> None:
    produced = PRODUCED[0]
    reordered = {**dict(reversed(list(produced.items())))}
    changed = {**produced, "host": "someone-else"}
    assert shows(produced, produced)
    assert not shows(reordered, produced)
    assert not shows(changed, produced)
