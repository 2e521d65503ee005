"""appbuild/spl/reading.py: which fields a search reads, and what provides them.

The reading must fail on the mistakes it exists for (a misspelt field, a field a stats threw
away, a tstats on a search-time field, a lookup column that does not exist) and pass the same
searches written correctly, against the app's real macros and a real dataset.
"""

from __future__ import annotations

import pytest

from appbuild.spl.fields import event_fields
from appbuild.spl.knowledge import expand
from appbuild.spl.reading import (
    ReadingError,
    expression_fields,
    missing_fields,
    parse_aggregation,
    renamed_fields,
)
from tests.built_app import app_knowledge
from tests.datasets import dataset_events

VIOLATIONS = dataset_events("detections/data/detect_violations.ndjson")
NAMES = set().union(*map(event_fields, VIOLATIONS))
INDEXED = set().union(*(event["fields"] for event in VIOLATIONS))
BASE = "`iot_defender_violations` | "


def missing(spl: str) -> list[str]:
    knowledge = app_knowledge()
    return missing_fields(expand(spl, knowledge), NAMES, INDEXED, knowledge.lookups)


@pytest.mark.parametrize(
    "spl",
    [
        BASE + "where violationEventTyp=1",
        BASE + "stats count by thing | where origin=1",
        BASE + "stats max(metricValue.cnt) AS x by thing",
        "| tstats count where `iot_defender_violations` by behavior_type",
        BASE + "lookup iot_defender_inventory thingName",
        BASE + "lookup iot_defender_inventory thing AS nope",
        BASE + "lookup iot_defender_nowhere thing",
        BASE + "stats count by thing | table thing behavior",
        BASE + "table thing violationEventTyp",
        BASE + "dedup thingNam",
        "| multisearch [search `iot_defender_violations` | eval x=1] "
        "[search `iot_defender_violations`] | where y=1",
        "| multisearch [search `iot_defender_violations` | where nope=1]",
        BASE + "append [search `iot_defender_violations` | where nope=1]",
    ],
)
def test_a_field_nothing_provides_is_reported(spl: str) -> None:
    assert missing(spl)


@pytest.mark.parametrize(
    "spl",
    [
        BASE + "where violationEventType=1",
        BASE + "lookup iot_defender_inventory thing AS host",
        BASE + "stats count by thing behavior.name | where count>1",
        BASE + "table _time thing behavior.name",
        BASE + "eval x=1, y=if(a, 2, 3) | where x=1 AND y=2",
        BASE + "rename thing AS device | stats count by device",
        BASE + "timechart count by thing | where anything=1",
        "| multisearch [search `iot_defender_violations` | eval x=1] "
        "[search `iot_defender_violations`] | where x=1 AND thing=1",
        "| tstats count where `iot_defender_violations` by thing, metric",
    ],
)
def test_a_field_the_data_or_the_pipeline_provides_passes(spl: str) -> None:
    assert missing(spl) == []


def test_the_message_names_the_command_and_the_field() -> None:
    assert missing(BASE + "stats count by thing | where origin=1") == [
        "where: 'origin' is not in the data or made earlier"
    ]


def test_aggregations_are_read_with_their_names_reads_and_groups() -> None:
    aggregation = parse_aggregation(
        'count, dc(src) AS sources, sum(eval(if(x="a b", 1, 0))) AS n by thing, "metric" span=5m'
    )
    assert aggregation.outputs == ["count", "sources", "n"]
    assert aggregation.reads == {"src", "x"}
    assert aggregation.by == ["thing", "metric"]


def test_an_aggregation_it_cannot_read_is_an_error() -> None:
    with pytest.raises(ReadingError, match="cannot read aggregation"):
        parse_aggregation("count(a)b")


def test_expression_fields_are_quoted_names_and_bare_words_not_calls() -> None:
    expression = """if(isnull('detail.ports{}'), coalesce(a, "b c"), lower(thing)) AND NOT x"""
    assert expression_fields(expression) == {"detail.ports{}", "a", "thing", "x"}


def test_renamed_fields_are_the_names_after_as() -> None:
    assert renamed_fields("a AS b, c,d as e") == ["b", "c", "e"]
