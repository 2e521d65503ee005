"""The names Splunk gives a JSON event's fields at search time.

KV_MODE=json and spath name a field by its path: `a.b` inside objects, `a{}` for the items of
an array, so `{"a": [{"b": 1}]}` gives `a{}.b`. Only values are fields: an object or an array
is reached through the names of what it holds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

# Fields every Splunk event has, whatever its body.
DEFAULT_FIELDS: Final = frozenset(
    {"_time", "_raw", "host", "source", "sourcetype", "index", "splunk_server"}
)


def flatten(value: Any, prefix: str = "") -> Iterator[str]:
    """The field name of every value in a JSON document, once per value (repeats included)."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield from flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for item in value:
            yield from flatten(item, f"{prefix}{{}}")
    elif prefix:
        yield prefix


def event_fields(hec_event: Mapping[str, Any]) -> set[str]:
    """Fields one HEC event has in Splunk before props computes any: its body's (KV_MODE=json),
    its index-time `fields`, and the default fields."""
    return set(flatten(hec_event["event"])) | set(hec_event.get("fields", {})) | DEFAULT_FIELDS
