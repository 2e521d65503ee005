"""Hypothesis strategies and mutations shared by the property tests: values built from one
drawn byte string, and structural mutations of parsed documents."""

from __future__ import annotations

import json
import math
import string
import struct
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import strategies as st


class Choices:
    """Decisions read from one hypothesis-drawn byte string; all zeros once it runs out.

    Every generator below is driven by one ``st.binary`` draw. Hypothesis still explores and
    shrinks (shorter, smaller bytes mean fewer mutations and simpler values, down to null or
    the untouched fixture), but an example costs a single choice: nested strategies such as
    st.recursive or st.fixed_dictionaries cost ~2 ms an example here, too slow for 10,000.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def take(self, size: int) -> bytes:
        chunk = self.data[self.position : self.position + size]
        self.position += size
        return chunk.ljust(size, b"\0")

    def below(self, bound: int) -> int:
        """A number in [0, bound)."""
        size = 1 if bound <= 256 else 2 if bound <= 65_536 else 3
        return int.from_bytes(self.take(size), "little") % bound

    def pick(self, items: Sequence[Any]) -> Any:
        return items[self.below(len(items))]

    def maybe(self) -> bool:
        """True three times in four, and when the bytes have run out."""
        return self.below(4) != 3

    def count(self, most: int) -> int:
        """0 to ``most``, and 1 when the bytes have run out."""
        return (self.below(most + 1) + 1) % (most + 1)


def from_bytes(build: Callable[[Choices], Any], min_size: int = 48) -> st.SearchStrategy[Any]:
    """Values built from one byte string (hypothesis sizes it ~100 bytes on average)."""
    return st.binary(min_size=min_size, max_size=160).map(lambda data: build(Choices(data)))


KNOWN_KEYS = [
    "route",
    "payload",
    "thing_name",
    "received_at",
    "header",
    "hed",
    "metrics",
    "custom_metrics",
    "TopicArn",
    "Message",
    "Type",
    "metric_stream_name",
    "messageType",
    "logGroup",
    "logEvents",
    "message",
    "recordType",
    "schemaVersion",
    "clientId",
    "eventType",
    "timestamp",
    "violationId",
    "auditDetails",
    "findingId",
    "findings",
    "thing",
    "name",
    "value",
    "version",
]
# Values that steer records into the decoders' corners: routing values, and timestamps in
# every unit, out of range, or as strings.
SPECIAL_VALUES: list[Any] = [
    "CONTROL_MESSAGE",
    "DATA_MESSAGE",
    "Notification",
    "aws:iot:thing",
    "aws:iot:response",
    "connected",
    "in-alarm",
    "pump-0017",
    "AWSIotLogsV2",
    "arn:aws:sns:eu-west-1:123456789012:iot-defender-alerts",
    "index=main",
    1,
    1_795_165_121_906,
    1_795_165_121,
    1_795_165_121.5,
    1_795_165_121_906_000_000,
    4_102_444_800_000,
    0,
    -1,
    2**63 - 1,
    2**64 + 1,
    1e300,
    "2026-11-20 09:02:38.214",
    "2026-11-20T09:00:00+14:00",
    "0001-01-01T00:00:00+14:00",
    "1795165121906",
    "next tuesday",
]
# Characters that matter to JSON, HEC framing and Splunk: quotes, escapes, separators, NUL,
# line breaks JSON leaves unescaped (U+2028, U+0085) and multi-byte UTF-8.
ALPHABET = (
    string.ascii_letters + string.digits + ' :_-./{}[]",=\\\n\r\t\x00\u2028\u0085é€\U0001f600'
)


def build_string(choices: Choices) -> str:
    return "".join(choices.pick(ALPHABET) for _ in range(choices.below(12)))


def build_key(choices: Choices) -> str:
    return choices.pick(KNOWN_KEYS) if choices.below(3) else build_string(choices)


def build_int(choices: Choices) -> int:
    return int.from_bytes(choices.take(choices.below(9)), "little", signed=True)


def build_float(choices: Choices) -> float:
    (number,) = struct.unpack("<d", choices.take(8))
    return float(number) if math.isfinite(number) else 0.5


def build_object(choices: Choices, depth: int = 0) -> dict[str, Any]:
    return {build_key(choices): build_json(choices, depth + 1) for _ in range(choices.below(5))}


# What a JSON value may be; the last three (containers) only while not nested too deep.
JSON_KINDS: list[Callable[[Choices, int], Any]] = [
    lambda choices, depth: None,
    lambda choices, depth: choices.below(2) == 1,
    lambda choices, depth: build_int(choices),
    lambda choices, depth: build_float(choices),
    lambda choices, depth: build_string(choices),
    lambda choices, depth: choices.pick(SPECIAL_VALUES),
    lambda choices, depth: choices.pick(SPECIAL_VALUES),
    lambda choices, depth: [build_json(choices, depth + 1) for _ in range(choices.below(4))],
    build_object,
    build_object,
]


def build_json(choices: Choices, depth: int = 0) -> Any:
    """null, a bool, an int (to 64 bits), a float, a string, a special value, or a list or an
    object (keys mostly from the routing vocabulary) of further values."""
    kinds = len(JSON_KINDS) if depth < 3 else len(JSON_KINDS) - 3
    return JSON_KINDS[choices.below(kinds)](choices, depth)


ADVERSARIAL = [
    "index=main",
    "sourcetype=x",
    "source=evil",
    '","index":"main',
    '"}\n{"index":"main","sourcetype":"aws:iot:thing","event":{}}',
    "pump-0017\n",
    "pump-0017\nindex=main",
    "\r\nsourcetype=aws:iot:defender:violation",
    "x\u2028index=main",
    "x\u0085y",
    "aws:iot:defender:violation",
    "aws:listening-tcp-ports",
    "main",
    "\\",
    '\\"index\\":\\"main\\"',
    "",
    " ",
    "\x00",
    "arn:aws:sns:eu-west-1:123456789012:iot-defender-alerts\n",
    "cloudwatch:metric-stream:x",
    "x" * 300,
]
SUFFIXES = ["\n", "\r\n", "\u2028", " ", "\x00", "\nindex=main", '"', "\\"]
DocPath = tuple[Any, ...]


def value_paths(doc: Any) -> list[DocPath]:
    """Paths (keys and indices) to every value in ``doc``, the root () included."""
    paths: list[DocPath] = [()]
    stack: list[tuple[DocPath, Any]] = [((), doc)]
    while stack:
        path, node = stack.pop()
        if not isinstance(node, dict | list):
            continue
        children: Any = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in children:
            child_path = (*path, key)
            paths.append(child_path)
            stack.append((child_path, child))
    return paths


def get_at(doc: Any, path: DocPath) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def set_at(doc: Any, path: DocPath, value: Any) -> Any:
    if not path:
        return value
    get_at(doc, path[:-1])[path[-1]] = value
    return doc


def embedded_json(value: Any) -> Any:
    """The JSON container inside a string (an SNS Message, a log event message), else None."""
    if isinstance(value, str) and value and value[0] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return None
    return None


def as_number(value: Any) -> Any:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return -value if value else 1.5


def as_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int):
        return 0.25
    return float(value) + 0.5 if value % 2 else float(value)  # 22 -> 22.0: still an integer


def as_container(value: Any) -> Any:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return {str(i): item for i, item in enumerate(value)}
    return [value]


# A value as another JSON type.
RETYPES: list[Callable[[Any], Any]] = [
    json.dumps,
    as_number,
    as_float,
    as_container,
    lambda value: True,
    lambda value: None,
]
SKIP = object()  # a mutation that does not apply to this document


def _embedded(choices: Choices, doc: Any, paths: list[DocPath]) -> Any:
    inside = [p for p in paths if embedded_json(get_at(doc, p)) is not None]
    if not inside:
        return SKIP
    path = choices.pick(inside)
    inner = mutate(choices, embedded_json(get_at(doc, path)), nested=True)
    return set_at(doc, path, json.dumps(inner))


def _delete(choices: Choices, doc: Any, paths: list[DocPath]) -> Any:
    if len(paths) < 2:
        return SKIP
    path = choices.pick(paths[1:])
    del get_at(doc, path[:-1])[path[-1]]
    return doc


def _duplicate(choices: Choices, doc: Any, paths: list[DocPath]) -> Any:
    lists = [p for p in paths if isinstance(get_at(doc, p), list) and get_at(doc, p)]
    if not lists:
        return SKIP
    items = get_at(doc, choices.pick(lists))
    item = choices.pick(items)
    position = choices.below(len(items) + 1)
    items[position:position] = [json.loads(json.dumps(item)) for _ in range(choices.count(3))]
    return doc


def _add_key(choices: Choices, doc: Any, paths: list[DocPath]) -> Any:
    objects = [p for p in paths if isinstance(get_at(doc, p), dict)]
    if not objects:
        return SKIP
    get_at(doc, choices.pick(objects))[build_key(choices)] = build_json(choices, 1)
    return doc


def _adversarial(choices: Choices, doc: Any, paths: list[DocPath]) -> Any:
    path = choices.pick([p for p in paths if isinstance(get_at(doc, p), str)] or paths)
    value = get_at(doc, path)
    if isinstance(value, str) and choices.below(2):
        suffix = choices.pick(SUFFIXES)
        return set_at(doc, path, value + suffix if choices.below(2) else suffix + value)
    return set_at(doc, path, choices.pick(ADVERSARIAL))


def _retype(choices: Choices, doc: Any, paths: list[DocPath]) -> Any:
    path = choices.pick(paths)
    return set_at(doc, path, choices.pick(RETYPES)(get_at(doc, path)))


def _replace(choices: Choices, doc: Any, paths: list[DocPath]) -> Any:
    return set_at(doc, choices.pick(paths), build_json(choices, 1))


Mutation = Callable[[Choices, Any, list[DocPath]], Any]
MUTATIONS: list[Mutation] = [
    _delete,
    _replace,
    _retype,
    _duplicate,
    _adversarial,
    _add_key,
    _embedded,
    _embedded,
]


def mutate(choices: Choices, doc: Any, *, nested: bool = False) -> Any:
    """One structural mutation of a parsed document; returns the (new) document.

    Delete a key or item at any depth, replace a value with random JSON, change a value's
    type, duplicate list items, inject adversarial strings, add a key, or mutate the JSON
    inside a string (an SNS Message, a CloudWatch log message); else replace a value.
    """
    paths = value_paths(doc)
    mutation = choices.pick(MUTATIONS)
    if nested and mutation is _embedded:
        mutation = _replace
    result = mutation(choices, doc, paths)
    return _replace(choices, doc, paths) if result is SKIP else result


def damage_bytes(choices: Choices, data: bytes) -> bytes:
    """Mostly nothing; else truncate, or flip bits in one byte."""
    op = choices.below(4)
    if op < 2 or not data:
        return data
    position = choices.below(len(data))
    if op == 2:
        return data[:position]
    mask = choices.below(255) + 1
    return data[:position] + bytes([data[position] ^ mask]) + data[position + 1 :]
