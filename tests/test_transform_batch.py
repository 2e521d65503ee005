"""The 6,000,000-byte response limit: every record that fits is answered now, overflow is
re-ingested (bounded), an output that can never fit is split, and nothing is ever lost."""

from __future__ import annotations

import base64
import gc
import gzip
import itertools
import json
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from iot_defender_splunk.simulator.delivery import RULE_ROUTES, rule_record
from shared.firehose import put_records
from tests.fakes import FakeFirehose
from tests.support import (
    ARRIVAL_MS,
    NOW,
    STREAM_ARN,
    firehose_event,
    fixture,
    fixture_json,
    large_metrics_export,
    outcome_events,
    report_events,
    routed,
    transform,
)
from transform import reingest
from transform.batch import (
    SLICE_BYTES,
    BatchReport,
    InputRecord,
    Outcome,
    Reput,
    _slices,
    transform_batch,
)
from transform.config import Settings
from transform.context import RecordContext
from transform.decoders import decode_record
from transform.reingest import Untagged
from transform.sourcetypes import AUDIT_TASK, LIFECYCLE, METRIC, UNPARSED
from transform.timestamps import EARLIEST_PLAUSIBLE

SMALL_LIMIT = Settings(response_limit_bytes=40_000)


def _response(report: BatchReport) -> dict[str, Any]:
    """The response as the handler returns it."""
    return {
        "records": [
            {"recordId": o.record_id, "result": o.result, "data": o.data} for o in report.outcomes
        ]
    }


class RecordingReput:
    def __init__(self, fail: set[int] | None = None) -> None:
        self.payloads: list[bytes] = []
        self.fail = fail or set()

    def __call__(self, payloads: list[bytes]) -> list[int]:
        self.payloads.extend(payloads)
        return sorted(self.fail)


def test_overflow_is_reingested_and_the_response_stays_within_the_limit() -> None:
    payloads = [large_metrics_export(f"pump-{i:04d}", 20) for i in range(10)]
    reput = RecordingReput()

    report = transform(payloads, settings=SMALL_LIMIT, reput=reput)

    results = [o.result for o in report.outcomes]
    assert results.count("Ok") >= 1
    assert results.count("Dropped") >= 1
    assert set(results) == {"Ok", "Dropped"}
    assert len(json.dumps(_response(report))) <= SMALL_LIMIT.response_limit_bytes
    dropped = [i for i, result in enumerate(results) if result == "Dropped"]
    assert report.reingested == len(reput.payloads) == len(dropped)
    assert [reingest.untag(p) for p in reput.payloads] == [
        Untagged(payloads[i], 1) for i in dropped
    ]


def test_records_that_fit_are_answered_wherever_they_sit_in_the_batch() -> None:
    """The defect: once one record overflowed, every record after it was re-put as well."""
    big = [
        large_metrics_export(f"pump-{i:04d}", 60) for i in range(4)
    ]  # each ~15 KB out, 40 KB limit
    small = fixture("lifecycle", "connected.json")
    batch = [*big, small, big[0], small, small]

    report = transform(batch, settings=SMALL_LIMIT, reput=RecordingReput())

    results = [o.result for o in report.outcomes]
    assert [results[i] for i in (4, 6, 7)] == ["Ok", "Ok", "Ok"]
    assert "Dropped" in results[:4]
    assert len(json.dumps(_response(report))) <= SMALL_LIMIT.response_limit_bytes


def test_a_reingested_record_is_processed_again_like_the_original() -> None:
    original = large_metrics_export("pump-0001", 5)
    expected = [e["event"] for e in outcome_events(transform([original]).outcomes[0])]

    report = transform([reingest.tag(original, 1)])

    assert [e["event"] for e in outcome_events(report.outcomes[0])] == expected


def test_reingested_records_go_first_so_every_trip_makes_progress() -> None:
    fresh = [large_metrics_export(f"pump-{i:04d}", 20) for i in range(10)]
    returning = reingest.tag(large_metrics_export("pump-9999", 20), 2)
    reput = RecordingReput()

    report = transform([*fresh, returning], settings=SMALL_LIMIT, reput=reput)

    assert report.outcomes[-1].result == "Ok"
    assert outcome_events(report.outcomes[-1])[0]["host"] == "pump-9999"
    assert "Dropped" in {o.result for o in report.outcomes[:-1]}, "it jumped the queue"


def test_reingest_attempts_are_bounded() -> None:
    payloads = [reingest.tag(large_metrics_export(f"pump-{i:04d}", 20), 3) for i in range(10)]
    reput = RecordingReput()

    report = transform(payloads, settings=SMALL_LIMIT, reput=reput)

    failed = [o for o in report.outcomes if o.result == "ProcessingFailed"]
    assert failed
    assert all(o.reason == "response full after 3 re-ingest attempts" for o in failed)
    assert reput.payloads == []
    assert "Dropped" not in {o.result for o in report.outcomes}


def test_records_that_cannot_be_reput_fail_instead_of_vanishing() -> None:
    payloads = [large_metrics_export(f"pump-{i:04d}", 20) for i in range(10)]
    reput = RecordingReput(fail={0})

    report = transform(payloads, settings=SMALL_LIMIT, reput=reput)

    overflow = [o for o in report.outcomes if o.result != "Ok"]
    assert overflow[0].result == "ProcessingFailed"
    assert overflow[0].reason == "response full; re-put failed"
    assert {o.result for o in overflow[1:]} == {"Dropped"}


def test_without_a_stream_to_reput_into_the_overflow_fails() -> None:
    payloads = [large_metrics_export(f"pump-{i:04d}", 20) for i in range(10)]
    report = transform(payloads, settings=SMALL_LIMIT, reput=None)
    results = Counter(o.result for o in report.outcomes)
    assert set(results) == {"Ok", "ProcessingFailed"}
    failed = [o for o in report.outcomes if o.result == "ProcessingFailed"]
    assert {o.reason for o in failed} == {"response full; no stream to re-put into"}


@pytest.mark.parametrize(
    "error", [RuntimeError("boto3 is missing"), ValueError("You must specify a region.")]
)
def test_an_error_in_the_reput_path_costs_only_the_overflow(error: Exception) -> None:
    """Creating the client (no region, no boto3) or calling it may raise: the records that
    did fit are answered all the same, and only the overflow fails (backed up to S3)."""
    payloads = [large_metrics_export(f"pump-{i:04d}", 20) for i in range(10)]

    def broken(_: list[bytes]) -> list[int]:
        raise error

    report = transform(payloads, settings=SMALL_LIMIT, reput=broken)

    results = Counter(o.result for o in report.outcomes)
    assert results["Ok"] >= 1
    assert results["Ok"] + results["ProcessingFailed"] == len(payloads)
    failed = [o for o in report.outcomes if o.result == "ProcessingFailed"]
    assert {o.reason for o in failed} == {
        f"response full; re-put failed: {type(error).__name__}: {error}"
    }


def test_a_record_whose_output_can_never_fit_is_split_into_slices_that_each_fit() -> None:
    huge = large_metrics_export("pump-0001", 400)  # ~100 KB of events, 40 KB responses
    small = fixture("lifecycle", "connected.json")
    reput = RecordingReput()

    report = transform([small, huge, small], settings=SMALL_LIMIT, reput=reput)

    assert [o.result for o in report.outcomes] == ["Ok", "Dropped", "Ok"]
    slices = [reingest.untag(payload) for payload in reput.payloads]
    assert len(slices) > 1
    assert report.outcomes[1].reason == (
        f"output of {len(b''.join(s.data for s in slices))} bytes can never fit in a Lambda "
        f"response: re-ingested as {len(slices)} slices of events"
    )
    assert (report.split, report.reingested) == (1, len(slices))  # the ReIngested metric
    assert all(s.events and s.attempts == 1 for s in slices)
    # Each slice comes back as its own record and is answered whole, in one response each.
    replies = [
        transform([payload], settings=SMALL_LIMIT, reput=RecordingReput())
        for payload in reput.payloads
    ]
    assert all(r.outcomes[0].result == "Ok" for r in replies)
    events = [event for reply in replies for event in outcome_events(reply.outcomes[0])]
    direct = outcome_events(transform([huge]).outcomes[0])
    assert events == direct  # the same events, in order, exactly once


def test_a_record_with_nothing_new_to_send_is_dropped_saying_why() -> None:
    """A record whose every datapoint an earlier record of the batch already sent."""
    export = fixture("metrics_export", "with_dimension.json")

    report = transform([export, export])

    assert [o.result for o in report.outcomes] == ["Ok", "Dropped"]
    assert report.outcomes[1].reason == "nothing to send (control message, duplicates or empty)"
    assert report.outcomes[1].data == ""


def test_a_failed_slice_fails_its_own_record_and_the_others_count_as_split() -> None:
    """Slices of several records go in one re-put: a slice Firehose refused fails the record
    it came from, and only it; the records wholly re-put are counted (the ReIngested and
    split figures the handler publishes)."""
    huge = [large_metrics_export(f"pump-{n:04d}", 400) for n in range(3)]
    sliced = RecordingReput()
    transform(huge, settings=SMALL_LIMIT, reput=sliced)
    per_record = len(sliced.payloads) // 3
    reput = RecordingReput(fail={len(sliced.payloads) - 1})  # the third record's last slice

    report = transform(huge, settings=SMALL_LIMIT, reput=reput)

    assert [o.result for o in report.outcomes] == ["Dropped", "Dropped", "ProcessingFailed"]
    assert (report.outcomes[2].reason or "").endswith("; re-put failed")
    assert (report.split, report.reingested) == (2, 2 * per_record)


def test_slices_are_firehose_records_with_the_real_limit() -> None:
    """A CloudWatch Logs batch inflating to ~7 MB of log events (a few hundred KB gzipped)
    whose events are ~9 MB: they go back in slices of at most one Firehose record each."""
    logs = json.loads(gzip.decompress(fixture("iot_logs", "mixed_broker_events.json")))
    sample = logs["logEvents"]
    logs["logEvents"] = [
        {**sample[n % len(sample)], "id": str(n), "timestamp": 1795165358214 + n}
        for n in range(15_000)
    ]
    log_events = logs["logEvents"]
    record = gzip.compress(json.dumps(logs).encode())
    reput = RecordingReput()

    report = transform([record], reput=reput)

    assert report.outcomes[0].result == "Dropped"
    assert report.split == 1
    assert all(len(payload) <= reingest.TAG_BYTES + SLICE_BYTES for payload in reput.payloads)
    lines = sum(reingest.untag(p).data.count(b"\n") for p in reput.payloads)
    assert lines == len(log_events)


def test_an_event_larger_than_a_firehose_record_cannot_be_split_and_fails() -> None:
    """With 40 KB responses a slice holds about 29 KB: one 35 KB event fits in none."""
    connected = {"clientId": "a", "timestamp": 1795165000000, "eventType": "connected"}
    blob = routed("lifecycle", {**connected, "extra": "x " * 17_500})
    reput = RecordingReput()

    report = transform([blob], settings=SMALL_LIMIT, reput=reput)

    (outcome,) = report.outcomes
    (event,) = outcome_events(transform([blob]).outcomes[0])
    size = len(json.dumps(event, separators=(",", ":")).encode())
    said = re.fullmatch(
        rf"output of {size + 1} bytes can never fit in a Lambda response, and one event of "
        rf"{size} bytes is over the (\d+)-byte limit of a slice; it cannot be split",
        outcome.reason or "",
    )
    assert outcome.result == "ProcessingFailed"
    assert said, outcome.reason
    assert _most_slice_bytes(SMALL_LIMIT) - 2 <= int(said[1]) <= _most_slice_bytes(SMALL_LIMIT)
    assert reput.payloads == []


def _most_slice_bytes(settings: Settings) -> int:
    """The most event bytes a slice can hold, from first principles: it comes back as a record
    whose recordId may take 1,024 bytes of JSON, and the response answering it alone, in the
    longest form the runtime could write, must fit the limit. Base64 makes 4 of every 3."""
    entry = {"recordId": "r" * 1022, "result": "ProcessingFailed", "data": ""}
    room = settings.response_limit_bytes - len(json.dumps({"records": [entry]}))
    return min(SLICE_BYTES, room // 4 * 3)


def test_a_flood_of_large_reports_from_one_device_never_fails_another_devices_record() -> None:
    """One device floods the stream with big reports (each about 100 KB, fanning out to 100
    events); another sends small reports in between. Invocation after invocation, with a
    fresh flood each time and re-put records coming back first, every one of the small
    device's reports is delivered, and none of it fails."""
    firehose = FakeFirehose("iot-defender-splunk")

    def reput(payloads: list[bytes]) -> list[int]:
        return put_records(firehose, "iot-defender-splunk", payloads, sleep=lambda _: None)

    others = [_report("cam-lobby-2", index=n, strings=1) for n in range(12)]
    batch = [_report("pump-0017", index=n, strings=10) for n in range(50)]
    for position, small in zip(range(0, 60, 5), others, strict=True):
        batch.insert(position, small)  # spread through the batch, the first one first
    delivered: set[int] = set()  # the small device's reports that reached the response
    for trip in range(1, 4):
        report = transform(batch, reput=reput)
        assert report.count("ProcessingFailed") == 0
        assert len(json.dumps(_response(report))) <= 6_000_000
        for outcome in report.outcomes:
            delivered.update(
                int(event["fields"]["report_id"])
                for event in outcome_events(outcome)
                if event["host"] == "cam-lobby-2"
            )
        assert report.count("Dropped") > 0, "the flood overflows every response"
        flood = [_report("pump-0017", index=trip, strings=10) for _ in range(50)]
        batch = [*firehose.accepted, *flood]
        firehose.accepted.clear()
        if delivered == set(range(len(others))):
            break
    assert delivered == set(range(len(others)))
    assert trip == 1, "small reports are answered in the first invocation, flood or not"


def _report(thing: str, *, index: int, strings: int) -> bytes:
    """A device report of 100 custom metrics, each a list of ``strings`` 100-character values
    (10 make a report of about 100 KB, near the 128 KB MQTT limit)."""
    values = [f"{index:04d}-" + "v" * 95] * strings
    custom = {f"sensor_{n:03d}": [{"string_list": values}] for n in range(100)}
    report = {"header": {"report_id": index, "version": "1.0"}, "custom_metrics": custom}
    received = 1795165000000 + index
    return routed("device_report", {**report, "thing_name": thing, "received_at": received})


def _deep_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _export_with_a_deep_vendor_field(depth: int) -> bytes:
    """Detect's cloud-side export whose last datapoint carries a vendor field ``depth`` levels
    deep: orjson reads up to 1024 levels but writes only 254."""
    message = json.dumps(fixture_json("metrics_export", "cloud_side_metrics.json"))
    end = message.rfind("}]")
    nested = message[:end] + ', "vendor": ' + _deep_object(depth) + message[end:]
    return rule_record(RULE_ROUTES["metrics_export"], nested.encode())


def _message(routed_record: bytes) -> bytes:
    """The message inside an IoT rule's route envelope, as the unparsed event keeps it."""
    return base64.b64decode(json.loads(routed_record)["payload"])


BOTH_PATHS = pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "reference"])


@BOTH_PATHS
def test_a_record_too_deep_to_re_encode_becomes_one_unparsed_event_kept_raw(
    fast_path: bool,
) -> None:
    """1,000 levels parse, but no encoder writes them back: the record is kept whole, as one
    too_deeply_nested event, and the datapoints decoded before the deep one are not sent
    half (a partial record would look complete in Splunk). It is no bug: no decoder error."""
    record = _export_with_a_deep_vendor_field(1_000)
    lifecycle = fixture("lifecycle", "connected.json")
    if _stdlib_writes(_deep_object(1_000)):
        pytest.skip(
            "this interpreter's json writes 1,000 levels (CPython 3.13 checks the C "
            "stack, not a recursion count): the next test covers it"
        )

    report = transform([record, lifecycle], settings=Settings(fast_path=fast_path))

    assert [o.result for o in report.outcomes] == ["Ok", "Ok"]
    (event,) = outcome_events(report.outcomes[0])
    assert event["sourcetype"] == UNPARSED
    assert event["fields"] == {"reason_code": "too_deeply_nested"}
    assert event["event"]["reason"] == "record nests too deeply to re-encode as an event"
    assert event["event"]["payload"].encode() == _message(record)
    assert report.decoder_errors == []
    assert [e["sourcetype"] for e in outcome_events(report.outcomes[1])] == [LIFECYCLE]


def _stdlib_writes(text: str) -> bool:
    try:
        json.dumps(json.loads(text))
    except RecursionError:
        return False
    return True


@BOTH_PATHS
def test_a_record_deeper_than_orjson_writes_is_sent_whole_when_the_stdlib_can_write_it(
    fast_path: bool,
) -> None:
    """Where the stdlib encoder writes 1,000 levels, the deep datapoint is sent with every other
    one of its record, the vendor field intact, and nothing is unparsed."""
    record = _export_with_a_deep_vendor_field(1_000)
    if not _stdlib_writes(_deep_object(1_000)):
        pytest.skip("this interpreter's json stops short of 1,000 levels: the test above covers it")
    exported = json.loads(_message(record))["metrics"]

    report = transform([record], settings=Settings(fast_path=fast_path))

    events = outcome_events(report.outcomes[0])
    assert [e["sourcetype"] for e in events] == [METRIC] * len(exported)
    assert events[-1]["event"]["vendor"] == json.loads(_deep_object(1_000))
    assert report.decoder_errors == []


def test_a_decoder_bug_costs_its_record_alone_and_is_reported_with_its_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No realistic input reaches this branch (tests/test_properties.py asserts that no
    damaged sample ever yields internal_error), so a decoder bug is simulated: it raises
    after emitting an event, on the export only."""
    real_decode = decode_record

    def buggy(data: bytes, ctx: RecordContext) -> None:
        real_decode(data, ctx)
        if ctx.events and ctx.events[0]["sourcetype"] == METRIC:
            raise KeyError("dimension")

    monkeypatch.setattr("transform.batch.decode_record", buggy)
    export = fixture("metrics_export", "with_dimension.json")
    lifecycle = fixture("lifecycle", "connected.json")

    report = transform([export, lifecycle], settings=Settings(fast_path=False))

    assert [o.result for o in report.outcomes] == ["Ok", "Ok"]
    (event,) = outcome_events(report.outcomes[0])
    assert event["fields"] == {"reason_code": "internal_error"}
    assert event["event"]["reason"] == "transform failed: KeyError: 'dimension'"
    assert event["event"]["payload"].encode() == _message(export)
    (error,) = report.decoder_errors
    assert error.startswith("Traceback (most recent call last):")
    assert error.rstrip().endswith("KeyError: 'dimension'")
    assert report.events_by_sourcetype == Counter({UNPARSED: 1, LIFECYCLE: 1})


@BOTH_PATHS
@pytest.mark.parametrize("stray", ["$", "!", " ", "\n", "é"])
def test_data_with_a_character_outside_base64_is_invalid_not_silently_skipped(
    fast_path: bool, stray: str
) -> None:
    """A lenient decoder skips what is not base64 and decodes the rest, so a damaged record
    would pass as its neighbour's bytes; the strict one keeps it as it came."""
    (entry,) = firehose_event([fixture("lifecycle", "connected.json")])["records"]
    data = entry["data"][:8] + stray + entry["data"][8:]
    record = InputRecord(entry["recordId"], data, entry["approximateArrivalTimestamp"])

    report = transform_batch(
        [record],
        settings=Settings(fast_path=fast_path),
        stream_source=STREAM_ARN,
        now=NOW,
        reput=None,
    )

    (event,) = outcome_events(report.outcomes[0])
    assert event["fields"] == {"reason_code": "invalid_base64"}
    assert event["event"]["reason"] == "data is not valid base64"
    assert event["event"]["payload"] == data
    assert report.decoder_errors == []


@pytest.mark.parametrize(
    ("data", "reason_code"),
    [("bm90IGJhc2U2NCE*" * 4, "invalid_base64"), (None, "invalid_record")],
    ids=["invalid-base64", "no-data-string"],
)
def test_records_that_never_decoded_and_find_the_response_full_come_back_as_their_events(
    data: str | None, reason_code: str
) -> None:
    """Data that is not base64 has no bytes to re-put: what comes back is the unparsed event
    standing for each record, holding its id and data as they came, never an empty record."""
    records = [InputRecord(f"record-{n:03d}", data, ARRIVAL_MS) for n in range(300)]
    reput = RecordingReput()

    report = transform_batch(
        records, settings=SMALL_LIMIT, stream_source=STREAM_ARN, now=NOW, reput=reput
    )

    roomy = transform_batch(
        records, settings=Settings(), stream_source=STREAM_ARN, now=NOW, reput=None
    )

    deferred = [n for n, o in enumerate(report.outcomes) if o.result == "Dropped"]
    assert deferred, "the response had room for all: no re-put to see"
    came_back = report_events(transform(reput.payloads))
    assert came_back == [outcome_events(roomy.outcomes[n])[0] for n in deferred]
    assert {e["sourcetype"] for e in came_back} == {UNPARSED}
    assert all(e["fields"] == {"reason_code": reason_code} for e in came_back)
    assert [e["event"]["record_id"] for e in came_back] == [f"record-{n:03d}" for n in deferred]


@pytest.mark.parametrize(("data", "kind"), [(None, "NoneType"), (123, "int")])
def test_a_record_without_a_data_string_is_one_unparsed_event_saying_so(
    data: object, kind: str
) -> None:
    """Firehose always sends a data string; if one is missing, the record is still answered,
    at its arrival time, with what it held: nothing."""
    record = InputRecord("record-1", data, ARRIVAL_MS)

    report = transform_batch(
        [record], settings=Settings(), stream_source=STREAM_ARN, now=NOW, reput=None
    )

    (event,) = outcome_events(report.outcomes[0])
    assert event["time"] == ARRIVAL_MS / 1000
    assert event["fields"] == {"reason_code": "invalid_record"}
    assert event["event"] == {
        "reason_code": "invalid_record",
        "reason": f"Firehose record has no data string ({kind})",
        "record_id": "record-1",
        "payload": "",
        "payload_encoding": "utf-8",
    }
    assert report.decoder_errors == []


_LATEST = NOW + Settings().max_future_skew_seconds


@pytest.mark.parametrize(
    ("arrival", "stamped"),
    [
        (EARLIEST_PLAUSIBLE, EARLIEST_PLAUSIBLE),
        (EARLIEST_PLAUSIBLE - 0.001, NOW),
        (_LATEST, _LATEST),
        (_LATEST + 0.001, NOW),
    ],
    ids=["earliest", "before-it", "latest", "after-it"],
)
def test_an_arrival_time_is_used_up_to_and_including_each_plausible_edge(
    arrival: float, stamped: float
) -> None:
    """An unparsed event has no time but the record's arrival; an arrival outside the
    plausible window is Firehose's clock gone odd, and the Lambda's clock is used instead."""
    record = InputRecord("record-1", base64.b64encode(b"not json").decode(), arrival * 1000)

    report = transform_batch(
        [record], settings=Settings(), stream_source=STREAM_ARN, now=NOW, reput=None
    )

    (event,) = outcome_events(report.outcomes[0])
    assert event["time"] == stamped


def test_detect_exports_and_audit_notifications_take_the_fast_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fast path is what makes the common records cheap: if it stopped taking them, the
    output would not change (the differential tests hold it equal), only the cost."""

    def reference(*_: object) -> None:
        raise AssertionError("the reference decoders were called")

    monkeypatch.setattr("transform.batch.decode_record", reference)
    payloads = [
        fixture("metrics_export", "with_dimension.json"),
        fixture("audit_notification", "completed_scheduled_noncompliant_sns.json"),
    ]

    report = transform(payloads, settings=Settings(fast_path=True))

    assert report.decoder_errors == []
    assert [e["sourcetype"] for o in report.outcomes for e in outcome_events(o)][:1] == [METRIC]
    assert AUDIT_TASK in {e["sourcetype"] for e in outcome_events(report.outcomes[1])}


# Firehose's recordIds are ASCII; these also hold what JSON escapes (a quote, a backslash, a
# tab, non-ASCII), so the budget must count each id as the Lambda runtime encodes it.
_ID = "49546986683135544286507457936321625675700192471156785154"
TRICKY_IDS = [_ID, f'{_ID}"q"', f"{_ID}\\b\\", f"{_ID}-ünïcödé-✓", f"{_ID}\tdel\x7f"]


def _tricky_batch(payloads: list[bytes], settings: Settings, reput: Reput | None) -> BatchReport:
    records = [
        InputRecord(record_id, base64.b64encode(payload).decode(), ARRIVAL_MS)
        for record_id, payload in zip(TRICKY_IDS, payloads, strict=False)
    ]
    return transform_batch(
        records, settings=settings, stream_source=STREAM_ARN, now=NOW, reput=reput
    )


def _worst_case_response_bytes(outcomes: list[Outcome]) -> int:
    """The longest response these outcomes could make, as the Lambda runtime writes it
    (json.dumps): every result "ProcessingFailed", every record's data answered."""
    entries = [
        {"recordId": o.record_id, "result": "ProcessingFailed", "data": o.data} for o in outcomes
    ]
    return len(json.dumps({"records": entries}))


# What transform/batch.py reserves beyond that: a separator after the last entry, deliberately
# safe. Pinned, so any change to the accounting shows here.
def _reserved_bytes(outcomes: list[Outcome]) -> int:
    return _worst_case_response_bytes(outcomes) + len(", ")


def _payloads() -> list[bytes]:
    return [
        fixture("lifecycle", "connected.json"),
        fixture("metrics_export", "with_dimension.json"),
        fixture("lifecycle", "disconnected_client_initiated.json"),
        fixture("metrics_export", "cloud_side_metrics.json"),
        large_metrics_export("pump-0001", 20),  # the largest: answered last
    ]


def test_a_response_of_exactly_the_limit_is_answered_whole_one_byte_less_is_not() -> None:
    """The budget is exact to the byte: at the limit every record is answered now; a byte
    less and the largest (answered last) is re-put, and the response stays within it."""
    answered = _tricky_batch(_payloads(), Settings(), None).outcomes
    limit = _reserved_bytes(answered)

    at_limit = _tricky_batch(_payloads(), Settings(response_limit_bytes=limit), None)
    reput = RecordingReput()
    over = _tricky_batch(_payloads(), Settings(response_limit_bytes=limit - 1), reput)

    assert at_limit.outcomes == answered
    assert [o.result for o in over.outcomes] == ["Ok", "Ok", "Ok", "Ok", "Dropped"]
    assert (over.count("Ok"), over.count("Dropped"), over.count("ProcessingFailed")) == (4, 1, 0)
    assert over.outcomes[-1].reason == "re-ingested: response size limit"
    assert [reingest.untag(p) for p in reput.payloads] == [Untagged(_payloads()[-1], 1)]
    assert len(json.dumps(_response(over))) <= limit - 1


def test_a_record_whose_response_alone_is_the_limit_is_re_put_whole_one_byte_more_is_split() -> (
    None
):
    """The largest record cannot join the others; whether it is re-put as it is or split
    depends on whether a response holding it alone would fit, to the byte."""
    small, large = fixture("lifecycle", "connected.json"), large_metrics_export("pump-0001", 20)
    answered = _tricky_batch([small, large], Settings(), None).outcomes
    alone = _reserved_bytes(answered[-1:])

    whole, sliced = RecordingReput(), RecordingReput()
    fits = _tricky_batch([small, large], Settings(response_limit_bytes=alone), whole)
    never = _tricky_batch([small, large], Settings(response_limit_bytes=alone - 1), sliced)

    assert fits.outcomes[-1].reason == "re-ingested: response size limit"
    assert [reingest.untag(p) for p in whole.payloads] == [Untagged(large, 1)]
    assert [o.result for o in never.outcomes] == ["Ok", "Dropped"]
    assert (fits.split, never.split) == (0, 1)
    assert "can never fit in a Lambda response" in (never.outcomes[-1].reason or "")
    assert all(reingest.untag(p).events for p in sliced.payloads)


def test_a_slice_coming_back_is_sent_as_it_was_and_counted_by_sourcetype() -> None:
    lines = b"".join(
        json.dumps(event, separators=(",", ":")).encode() + b"\n"
        for event in outcome_events(
            transform([fixture("metrics_export", "with_dimension.json")]).outcomes[0]
        )
    )

    report = transform([reingest.tag_events(lines, 1)])

    assert base64.b64decode(report.outcomes[0].data) == lines
    assert report.events_by_sourcetype == Counter({METRIC: lines.count(b"\n")})
    assert report.decoder_errors == []


def test_a_slice_that_comes_back_to_a_full_response_is_re_put_as_the_same_slice_again() -> None:
    """A slice's second trip through the stream is still a slice (its events as they are, not
    a record to decode), and its attempts count on, so the bound on trips holds for it too."""
    lines = b"".join(
        json.dumps(event, separators=(",", ":")).encode() + b"\n"
        for event in outcome_events(transform([large_metrics_export("pump-0042", 20)]).outcomes[0])
    )
    reput = RecordingReput()

    report = transform([reingest.tag_events(lines, 1)] * 10, settings=SMALL_LIMIT, reput=reput)

    again = [o for o in report.outcomes if o.result == "Dropped"]
    assert 0 < len(again) < 10, "the test needs some slices answered and some left over"
    assert {o.reason for o in again} == {"re-ingested: response size limit"}
    assert [reingest.untag(p) for p in reput.payloads] == [Untagged(lines, 2, events=True)] * len(
        again
    )


@pytest.mark.parametrize(
    "lines",
    [
        b'{"time":1795165961.0,"sourcetype":"main","event":{}}\n',
        b'{"time":1795165961.0,"sourcetype":"aws:iot:defender:metric","event":{}}\nnot json\n',
        b'{"time":1795165961.0,"sourcetype":"aws:iot:defender:metric","event":{}}',
        b'{"time":1795165961.0,"sourcetype":"aws:iot:defender:metric","event":{}}\n'
        b'{"time":1795165961.0,"sourcetype":"main","event":{}}',
        b'["aws:iot:defender:metric"]\n',
        b"",
    ],
    ids=[
        "unknown-sourcetype",
        "a-line-not-json",
        "no-final-newline",
        "last-line-unchecked-without-its-newline",
        "not-an-event",
        "empty",
    ],
)
def test_a_slice_that_is_not_the_events_it_was_is_kept_as_one_unparsed_event(lines: bytes) -> None:
    """Only this Lambda tags slices, so one that does not hold our HEC events is a bug (or
    someone else's record): it is never sent as events, which could choose an index."""
    report = transform([reingest.tag_events(lines, 1)])

    (event,) = outcome_events(report.outcomes[0])
    assert event["fields"] == {"reason_code": "internal_error"}
    assert event["event"]["reason"] == "a re-put slice of events is not the HEC events it was"
    assert event["event"]["payload"].encode() == lines
    assert report.decoder_errors == []  # no decoder raised: nothing to trace back


@pytest.mark.property
@given(
    lines=st.lists(
        st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"") + b"\n"), max_size=30
    ),
    limit=st.integers(min_value=1, max_value=120),
)
@example(lines=[b"abcd\n"] * 4, limit=10)  # every slice, the second too, filled to the byte
def test_slices_hold_every_event_once_in_order_each_as_full_as_the_limit_allows(
    lines: list[bytes], limit: int
) -> None:
    """How an output that can never fit a response is cut: each slice within the limit, as
    few slices as the order allows (each is full: its next event would not have fitted),
    and nothing at all when one event alone is over the limit (it could never be re-put)."""
    payload = b"".join(lines)

    slices = list(_slices(payload, limit))

    if any(len(line) > limit for line in lines):
        assert slices == []
        return
    assert b"".join(slices) == payload
    assert all(len(piece) <= limit for piece in slices)
    for piece, following in itertools.pairwise(slices):
        assert len(piece) + len(following.split(b"\n", 1)[0]) + 1 > limit


def test_data_that_is_not_even_text_is_kept_exactly_as_base64() -> None:
    """A data string holding a lone surrogate (JSON allows one) has no UTF-8 form: its exact
    code units are kept, as base64, so nothing of what came is lost."""
    data = "eyJh\ud800IjoxfQ=="
    record = InputRecord("record-1", data, ARRIVAL_MS)

    report = transform_batch(
        [record], settings=Settings(), stream_source=STREAM_ARN, now=NOW, reput=None
    )

    (event,) = outcome_events(report.outcomes[0])
    assert event["fields"] == {"reason_code": "invalid_base64"}
    assert event["event"]["payload_encoding"] == "base64"
    assert base64.b64decode(event["event"]["payload"]) == data.encode("utf-8", "surrogatepass")


class CollectorWatch(RecordingReput):
    """A re-put that notes whether the cyclic collector ran during the batch, which calls it."""

    def __init__(self) -> None:
        super().__init__()
        self.collector_enabled: list[bool] = []

    def __call__(self, payloads: list[bytes]) -> list[int]:
        self.collector_enabled.append(gc.isenabled())
        return super().__call__(payloads)


def test_the_collector_pauses_during_a_batch_and_resumes_after() -> None:
    payloads = [large_metrics_export(f"pump-{i:04d}", 20) for i in range(10)]
    watch = CollectorWatch()

    transform(payloads, settings=SMALL_LIMIT, reput=watch)

    assert watch.collector_enabled == [False]
    assert gc.isenabled()


def test_the_collector_resumes_when_a_batch_raises() -> None:
    class Unreadable(list[InputRecord]):
        def __iter__(self) -> Iterator[InputRecord]:
            raise RuntimeError("records unreadable")

    with pytest.raises(RuntimeError, match="records unreadable"):
        transform_batch(Unreadable(), settings=Settings(), stream_source="s", now=0.0, reput=None)

    assert gc.isenabled()


def test_a_collector_disabled_by_the_caller_stays_disabled() -> None:
    gc.disable()
    try:
        transform([large_metrics_export("pump-0001", 5)], reput=RecordingReput())
        assert not gc.isenabled()
    finally:
        gc.enable()
