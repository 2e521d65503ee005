"""Hypothesis strategies for the fast-path differential test: batches of Detect export records
that are mostly what Detect sends, with the spellings and damage that tell two decoders apart.

Values come from small pools so that datapoints repeat across the items and records of one
batch (duplicate removal has something to do), and one time is spelled in seconds, ms and us.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from iot_defender_splunk.simulator.delivery import rule_record
from transform import reingest

Doc = dict[str, Any]

THINGS = ["pump-0017", "gw-berlin-2", "camera-lobby:1", "meter_9"]
ODD_THINGS = ["pump-0017\n", "", "x" * 129, "pümpe", "pump 1", "a/b"]
NAMES = ["aws:num-authorization-failures", "aws:listening-tcp-ports", "cpu_usage_pct"]
ODD_NAMES = ["", "n" * 129, "naïve\u2028metric", 'quote"and\\slash', "tab\tname"]
SECONDS = [1_795_165_500, 1_795_165_361]  # November 2026, before the tests' arrival time


def _spelled(seconds: int) -> st.SearchStrategy[object]:
    """One instant in the spellings AWS uses, and a few no decoder should trust."""
    return st.sampled_from(
        [
            seconds,
            seconds * 1000,
            seconds * 1_000_000,
            float(seconds),
            seconds + 0.25,
            seconds * 1000 + 0.5,
            float(seconds * 10**9),  # ns as a float: printed with an exponent
            str(seconds),
            0,
            -1,
            10**20,
            seconds * 10,  # far in the future
        ]
    )


timestamps = st.sampled_from(SECONDS).flatmap(_spelled)

numbers = st.one_of(
    st.integers(-5, 5),
    st.integers(2**62, 2**65),  # past int64 and u64: orjson reads some as floats
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.1, 1e15, 1e16, 1e22, 5e-324, -0.0, 1.5e-7]),
)

values = st.one_of(
    st.builds(lambda n: {"count": n}, numbers),
    st.builds(
        lambda cidrs: {"cidrs": cidrs},
        st.lists(st.sampled_from(["10.0.0.1/32", "x" * 65, "2001:db8::1/128"]), max_size=3),
    ),
    st.builds(
        lambda ports: {"ports": ports},
        st.lists(st.sampled_from([22, 502, 65535, 65536, -1, 80.0]), max_size=3),
    ),
    st.builds(lambda n: {"number": n}, numbers),
    st.builds(lambda ns: {"numbers": ns}, st.lists(numbers, max_size=3)),
    st.builds(lambda ss: {"strings": ss}, st.lists(st.text(max_size=6), max_size=3)),
    st.just({}),
    st.just({"count": 1, "number": 2.5}),
    st.just({"number": 2.5, "count": 1}),  # two kinds, not in the schema's order
    st.just({"count": 1, "unknown": 1}),
    st.just({"count": True}),
)

dimensions = st.sampled_from(
    [
        None,
        {"name": "TopicFilter"},
        {"name": "TopicFilter", "operator": "IN"},
        {"name": "TopicFilter", "operator": "NOT_IN"},
        {"operator": "IN", "name": "TopicFilter"},
        {"name": "TopicFilter", "operator": "LIKE"},
        {"name": ""},
    ]
)

versions = st.sampled_from([None, 0, 1, 2, 3, 1.0, -1, True])
extras = st.sampled_from([None, ("origin", "spoofed"), ("extra", 1), ("index", "main")])


@st.composite
def metric_items(draw: st.DrawFn) -> Doc:
    """One datapoint, in Detect's key order unless shuffled."""
    item: Doc = {
        "name": draw(st.sampled_from(NAMES) | st.sampled_from(ODD_NAMES)),
        "thing": draw(st.sampled_from(THINGS) | st.sampled_from(ODD_THINGS)),
        "value": draw(values),
    }
    version = draw(versions)
    if version is not None:
        item["version"] = version
    if draw(st.integers(0, 20)):
        item["timestamp"] = draw(timestamps)
    dimension = draw(dimensions)
    if dimension is not None:
        item["dimension"] = dimension
    extra = draw(extras)
    if extra is not None:
        item[extra[0]] = extra[1]
    if draw(st.integers(0, 9)) == 0:
        keys = draw(st.permutations(list(item)))
        item = {key: item[key] for key in keys}
    return item


def _message(draw: st.DrawFn, items: list[Doc]) -> bytes:
    doc: Doc = {"version": "1.0", "metrics": items}
    shape = draw(st.integers(0, 9))
    if shape == 0:
        doc = {"metrics": items}
    elif shape == 1:
        doc["nextToken"] = "abc"
    elif shape == 2:
        doc = {"metrics": items, "version": "1.0"}
    style = draw(st.integers(0, 9))
    if style == 0:
        return json.dumps(doc).encode()  # pretty separators
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=style == 1).encode()


def _damaged(draw: st.DrawFn, record: bytes) -> bytes:
    """Sometimes a record no rule writes: bad base64, an extra key, a re-ingest tag."""
    damage = draw(st.integers(0, 14))
    doc = json.loads(record)
    if damage == 0:
        doc["payload"] = doc["payload"][:-1] + "!"
    elif damage == 1:
        doc["thing_name"] = "pump-0017"
    elif damage == 2:
        doc["payload"] = doc["payload"].rstrip("=") + "="
    elif damage == 3:
        return reingest.tag(record, draw(st.integers(1, 4)))
    elif damage == 4:
        return record[:-1]  # truncated JSON
    elif damage == 5:
        return record.replace(b'{"route"', b'{"route":"device-report","route"', 1)
    else:
        return record
    return json.dumps(doc, separators=(",", ":")).encode()


@st.composite
def export_records(draw: st.DrawFn) -> bytes:
    """The bytes the detect-export rule puts into Firehose, now and then damaged."""
    items = draw(st.lists(metric_items(), max_size=8))
    return _damaged(draw, rule_record("detect-export", _message(draw, items)))


@st.composite
def batches(draw: st.DrawFn) -> list[bytes]:
    """Records of one invocation; some repeat, as Detect re-exports do."""
    pool = draw(st.lists(export_records(), min_size=1, max_size=5))
    return draw(st.lists(st.sampled_from(pool), min_size=1, max_size=8))
