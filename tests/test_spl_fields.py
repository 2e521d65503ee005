"""appbuild/spl/fields.py: the field names Splunk gives a JSON event (KV_MODE=json, spath)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from appbuild.spl.fields import DEFAULT_FIELDS, event_fields, flatten
from tests.datasets import dataset_events

# A device's listening ports as the transform sends them: a list of values, a list of objects.
PORTS_EVENT = dataset_events("detections/data/listening_ports.ndjson")[0]


def test_objects_join_with_dots_and_arrays_add_braces() -> None:
    assert sorted(set(flatten(PORTS_EVENT["event"]))) == [
        "detail.ports{}.interface",
        "detail.ports{}.port",
        "name",
        "thing",
        "value.ports{}",
    ]


def test_a_name_comes_once_per_value() -> None:
    names = Counter(flatten(PORTS_EVENT["event"]))
    assert names["value.ports{}"] == len(PORTS_EVENT["event"]["value"]["ports"]) == 2
    assert names["detail.ports{}.port"] == 2


def test_containers_are_no_fields_and_nested_arrays_nest_braces() -> None:
    assert list(flatten({"a": {}, "b": [], "c": [[1], [2, 3]], "d": None})) == [
        "c{}{}",
        "c{}{}",
        "c{}{}",
        "d",
    ]
    assert list(flatten("just a value")) == []


def test_an_events_fields_are_its_body_its_index_time_fields_and_the_defaults() -> None:
    fields = event_fields(PORTS_EVENT)
    index_time = {"metric", "origin", "report_id"}  # thing is in both
    assert fields == set(flatten(PORTS_EVENT["event"])) | index_time | DEFAULT_FIELDS
    assert "thing" in PORTS_EVENT["fields"]


# --- property: flatten and spath's reading of a path agree ----------------------------------------

KEYS = st.text(alphabet="abcdefgh_", min_size=1, max_size=4)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=20,
)


def values_at(document: Any, name: str) -> list[Any]:
    """Every value a field name reaches, read the way spath reads a path: `a.b` into objects,
    `{}` into every item of an array."""
    found = [document]
    for step in name.replace("{}", ".{}").split("."):
        if step == "{}":
            found = [item for value in found if isinstance(value, list) for item in value]
        else:
            found = [value[step] for value in found if isinstance(value, dict) and step in value]
    return [value for value in found if not isinstance(value, dict | list)]


def scalars(document: Any) -> int:
    if isinstance(document, dict):
        return sum(map(scalars, document.values()))
    if isinstance(document, list):
        return sum(map(scalars, document))
    return 1


@given(st.dictionaries(KEYS, JSON, max_size=4))
def test_each_name_reaches_as_many_values_as_it_was_given_for(document: dict[str, Any]) -> None:
    names = Counter(flatten(document))
    assert {name: len(values_at(document, name)) for name in names} == dict(names)
    assert sum(names.values()) == scalars(document)
