"""The fast path (transform.fast) against the reference decoders: same batches in, the same
events, counters, outcomes and re-put payloads out, byte for byte."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iot_defender_splunk.simulator.delivery import STREAM_ARN, rule_record
from tests.export_batches import batches
from tests.fast_paths import SMALL_LIMIT, assert_paths_agree, compact
from tests.support import NOW
from transform import reingest
from transform.config import Settings
from transform.context import Invocation
from transform.fast import codec
from transform.fast import metrics_export as fast_metrics_export

Doc = dict[str, Any]


def item(thing: str = "pump-0017", **changes: object) -> Doc:
    """A datapoint as Detect exports it."""
    base: Doc = {
        "name": "aws:num-authorization-failures",
        "thing": thing,
        "value": {"count": 2},
        "version": 1,
        "timestamp": 1_795_165_500_000,
    }
    return {**base, **changes}


def export(*items: Doc) -> bytes:
    return rule_record("detect-export", compact({"version": "1.0", "metrics": list(items)}))


@given(
    batches(),
    st.sampled_from([6_000_000, SMALL_LIMIT]),
    st.sampled_from([None, "iot_security"]),
    st.none() | st.integers(0, 7),
)
def test_fast_and_reference_paths_agree_on_fuzzed_batches(
    payloads: list[bytes], limit: int, index: str | None, damage_data: int | None
) -> None:
    settings = Settings(default_index=index, response_limit_bytes=limit)
    assert_paths_agree(payloads, settings, damage_data=damage_data)


ADVERSARIAL: dict[str, list[bytes]] = {
    "duplicates_across_records": [
        export(item(), item(name="cpu_usage_pct", value={"number": 37.5})),
        export(item(version=2, value={"count": 5}), item()),
        export(item(version=2)),
    ],
    "one_time_in_seconds_ms_and_us": [
        export(item(timestamp=1_795_165_500), item(timestamp=1_795_165_500_000, version=2)),
        export(item(timestamp=1_795_165_500_000_000, version=3), item(timestamp=1_795_165_500.0)),
    ],
    "higher_version_later_in_the_record": [
        export(item(), item(thing="meter_9"), item(version=3), item(version=2)),
    ],
    "invalid_items_beside_valid_ones": [
        export(item(), item(thing=""), item(value={}), item(value={"count": -1}), item(version=-1)),
    ],
    "reingest_tag": [reingest.tag(export(item()), 2), export(item())],
    "bad_payload_base64": [
        rule_record("detect-export", b"{}").replace(b'"e30="', b'"e30"'),
        export(item()),
    ],
    "thing_name_with_a_newline": [export(item(thing="pump-0017\n")), export(item())],
    "unicode_names_and_strings": [
        export(item(name="température", value={"strings": ["naïve", "\u2028", "☃"]})),
    ],
    "huge_numbers": [
        export(item(value={"count": 2**64})),
        export(item(value={"count": 2**63})),
        export(item(value={"number": 1e16})),
        export(item(timestamp=1.7951655e18)),
        export(item(value={"numbers": [2**70, -(2**63) - 1, 1e-7]})),
    ],
    "floats_spelled_without_the_plus_orjson_writes": [
        rule_record(
            "detect-export",
            compact({"metrics": [item(value={"number": 0.5})]}).replace(b"0.5", b"1e16"),
        ),
        rule_record(
            "detect-export",
            compact({"metrics": [item(value={"count": 0.5})]}).replace(b"0.5", b"2.5e17"),
        ),
    ],
    "extra_keys": [
        export(item(origin="spoofed")),
        export(item(index="main")),
        rule_record("detect-export", compact({"metrics": [item()], "nextToken": "x"})),
        export(item(dimension={"name": "TopicFilter", "operator": "IN", "extra": 1})),
    ],
    "keys_out_of_detect_order": [
        rule_record("detect-export", compact({"metrics": [item()], "version": "1.0"})),
        export({"thing": "pump-0017", **item()}),
        export(item(dimension={"operator": "IN", "name": "TopicFilter"})),
    ],
    "duplicate_json_keys": [
        export(item()).replace(b'"route":', b'"route":"lifecycle","route":', 1),
        rule_record(
            "detect-export",
            compact({"metrics": [item()]}).replace(b'{"name"', b'{"name":"x","name"'),
        ),
    ],
    "pretty_printed_export": [
        rule_record("detect-export", json.dumps({"metrics": [item()]}).encode())
    ],
    "timestamps_needing_a_fallback": [
        export(item(timestamp=0)),
        export(item(timestamp=10**13 * 10)),
    ],
    "all_duplicates_of_an_earlier_record": [export(item()), export(item())],
    # No repeats within the first record but three versions: what it sent must be each one's.
    "distinct_versions_none_repeated": [
        export(item(version=1), item(thing="meter_9", version=3), item(thing="valve-2", version=0)),
        export(
            item(version=2),
            item(thing="meter_9", version=2),
            item(thing="valve-2", version=0),
            item(thing="valve-2", version=1),
        ),
    ],
    "some_keys_sent_by_an_earlier_record": [
        export(item(), item(thing="meter_9")),
        export(item(thing="meter_9", version=2), item(thing="valve-2"), item(version=1)),
    ],
    "route_spelled_with_an_escape": [
        export(item("meter_9")).replace(b'"detect-export"', b'"detect\\u002dexport"'),
        export(item()),
    ],
    "a_valid_thing_name_then_one_with_a_newline": [
        export(item()),
        export(item(thing="pump-0017\n")),
    ],
}


@pytest.mark.parametrize("case", sorted(ADVERSARIAL))
@pytest.mark.parametrize("limit", [6_000_000, SMALL_LIMIT])
def test_fast_and_reference_paths_agree_on_adversarial_batches(case: str, limit: int) -> None:
    assert_paths_agree(ADVERSARIAL[case], Settings(response_limit_bytes=limit))


def invocation() -> Invocation:
    return Invocation(settings=Settings(), now=NOW, stream_source=STREAM_ARN)


def test_the_fast_path_takes_what_detect_sends() -> None:
    """Otherwise the differential tests would compare the reference path with itself."""
    record = export(item(), item(name="aws:listening-tcp-ports", value={"ports": [22, 502]}))
    taken = fast_metrics_export.transform(record, invocation())
    assert taken is not None
    lines, events = taken
    assert events == 2
    report = assert_paths_agree([record], Settings())
    assert base64.b64decode(report.outcomes[0].data) == lines


@pytest.mark.parametrize(
    "case", ["distinct_versions_none_repeated", "some_keys_sent_by_an_earlier_record"]
)
def test_the_fast_path_takes_every_record_of_the_deduplication_cases(case: str) -> None:
    """Else those cases would test the reference path against itself."""
    state = invocation()
    assert all(fast_metrics_export.transform(record, state) for record in ADVERSARIAL[case])


def test_known_thing_names_are_bounded_and_only_ever_names_that_match(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fast_metrics_export, "MAX_KNOWN_THINGS", 2)
    monkeypatch.setattr(fast_metrics_export, "_known_things", set())
    state = invocation()
    assert fast_metrics_export.transform(export(item("pump-1"), item("pump-2")), state)
    assert fast_metrics_export.transform(export(item("pump-3"), item("pump\n")), state) is None
    assert fast_metrics_export._known_things == {"pump-1", "pump-2"}
    assert fast_metrics_export.transform(export(item("pump-3")), state)
    assert fast_metrics_export._known_things == {"pump-3"}


@pytest.mark.parametrize(
    "record",
    [
        export(item(thing="pump-0017\n")),
        export(item(origin="spoofed")),
        export(item(value={})),
        export(item(timestamp=0)),
        rule_record("detect-export", json.dumps({"metrics": [item()]}).encode()),
    ],
    ids=["newline_in_thing", "extra_key", "empty_value", "implausible_time", "pretty_printed"],
)
def test_the_fast_path_refuses_before_changing_any_state(record: bytes) -> None:
    state = invocation()
    state.metric_versions[("pump-0017", "x", 1.0, "")] = 1
    assert fast_metrics_export.transform(record, state) is None
    assert state.metric_versions == {("pump-0017", "x", 1.0, ""): 1}
    assert state.duplicates_removed == 0


BASE64_TEXT = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n*é"
)


def verdict(decode: codec.Decode, text: str) -> bytes | str:
    try:
        return decode(text)
    except ValueError as error:  # binascii.Error is a ValueError
        return type(error).__name__


@given(st.binary(max_size=64).map(lambda data: base64.b64encode(data).decode()) | BASE64_TEXT)
def test_fast_base64_decoding_gives_the_stdlib_verdict(text: str) -> None:
    fast = verdict(codec.fast_b64decode, text)
    assert fast == verdict(codec.stdlib_b64decode, text)


@given(st.binary(max_size=256))
def test_fast_base64_encoding_equals_the_stdlib(data: bytes) -> None:
    assert codec.fast_b64encode(data) == codec.stdlib_b64encode(data)


def test_without_pybase64_the_stdlib_does_the_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codec, "pybase64", None)
    assert codec.fast_b64decode("cHVtcA==") == b"pump"
    assert codec.fast_b64encode(b"pump") == "cHVtcA=="
    assert verdict(codec.fast_b64decode, "cHVtcA=") == "Error"
