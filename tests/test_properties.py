"""Soak (>= 100,000 examples each): HYPOTHESIS_EXAMPLES=100000 .venv/bin/pytest -m property"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, note
from hypothesis import strategies as st

from iot_defender_splunk.simulator import device_report, iot_logs
from iot_defender_splunk.simulator.delivery import (
    GZIPPED_KINDS,
    RULE_ADDED_KEYS,
    RULE_ROUTES,
    cloudwatch_gzip,
    gzipped,
    rule_record,
)
from tests.fakes import FakeFirehose
from tests.strategies import (
    ADVERSARIAL,
    Choices,
    build_json,
    build_key,
    build_object,
    build_string,
    damage_bytes,
    from_bytes,
    mutate,
)
from tests.support import ARRIVAL_MS, STREAM_ARN, FakeLambdaContext, firehose_event, fixture_paths
from transform import handler
from transform.config import Settings
from transform.decoders.device_report import _LONG_NAMES
from transform.sourcetypes import (
    ALL_SOURCETYPES,
    AUDIT_CHECK,
    AUDIT_FINDING,
    AUDIT_TASK,
    CLOUDWATCH_METRIC,
    IOT_LOG,
    LIFECYCLE,
    METRIC,
    RESPONSE,
    THING,
    UNPARSED,
    VIOLATION,
)
from transform.timestamps import EARLIEST_PLAUSIBLE

pytestmark = pytest.mark.property

ARRIVAL = ARRIVAL_MS / 1000
RESPONSE_LIMIT = 6_000_000
RESULTS = {"Ok", "Dropped", "ProcessingFailed"}
HEC_KEYS = {"time", "source", "sourcetype", "event", "host", "index", "fields"}
# Every reason an unparsed event may give. internal_error (a decoder raised) is left out on
# purpose: no input these strategies build should crash a decoder.
REASON_CODES = {
    "invalid_base64",
    "empty",
    "not_utf8",
    "invalid_json",
    "unknown_shape",
    "schema_violation",
    "unrouted",
    "over_limit",
    "unknown_message",
    "invalid_gzip",
    "decompressed_too_large",
}
SNS_TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]{1,256}")
LOG_GROUP = re.compile(r"[A-Za-z0-9._/#-]{1,512}")
METRIC_STREAM_SOURCE = re.compile(r"cloudwatch:metric-stream:[A-Za-z0-9_-]{1,255}")
THING_NAME = re.compile(r"[a-zA-Z0-9:_-]{1,128}")
SNS_SOURCETYPES = {VIOLATION, AUDIT_TASK, AUDIT_CHECK, AUDIT_FINDING}

BASE_SETTINGS = Settings()
SETTINGS_VARIANTS = [
    BASE_SETTINGS,
    dataclasses.replace(BASE_SETTINGS, default_index="iot_defender"),
    dataclasses.replace(
        BASE_SETTINGS,
        default_index="iot_defender",
        index_overrides={UNPARSED: "iot_unparsed", METRIC: "iot_metrics"},
    ),
]


FIREHOSE = FakeFirehose()  # must stay unused: no batch here overflows


# --- running the handler and checking the invariants ----------------------------------------

Payload = bytes | str  # str: put into the record verbatim (not base64)


def make_event(payloads: list[Payload]) -> dict[str, Any]:
    invocation = firehose_event([p if isinstance(p, bytes) else b"" for p in payloads])
    for record, payload in zip(invocation["records"], payloads, strict=True):
        if isinstance(payload, str):
            record["data"] = payload
    return invocation


def run(payloads: list[Payload], settings: Settings = BASE_SETTINGS) -> list[dict[str, Any]]:
    """Run the handler on one batch, assert every invariant, and return all HEC events."""
    note(f"payloads: {payloads!r}")
    invocation = make_event(payloads)
    lambda_handler = handler.make_handler(handler.Runtime(settings, firehose=FIREHOSE))
    response: dict[str, Any] = lambda_handler(invocation, FakeLambdaContext())
    latest = time.time() + settings.max_future_skew_seconds
    assert FIREHOSE.calls == []
    assert set(response) == {"records"}
    assert len(json.dumps(response)) <= RESPONSE_LIMIT
    records = response["records"]
    assert [r["recordId"] for r in records] == [r["recordId"] for r in invocation["records"]]
    events: list[dict[str, Any]] = []
    for record in records:
        assert record["result"] in RESULTS
        event(f"result: {record['result']}")
        if record["result"] == "Ok":
            for hec in ok_events(record):
                check_hec_event(hec, settings, latest=latest)
                events.append(hec)
    for hec in events:  # shown by --hypothesis-show-statistics: what the examples reached
        event(f"sourcetype: {hec['sourcetype']}")
        if hec["sourcetype"] == UNPARSED:
            event(f"reason_code: {hec['event']['reason_code']}")
    return events


def ok_events(record: dict[str, Any]) -> list[dict[str, Any]]:
    """An Ok record's data: base64 of one or more newline-terminated JSON objects.

    Split strictly on b"\\n", the framing Firehose concatenates. (support.hec_events uses
    str.splitlines(), which also breaks on U+2028, U+2029 and U+0085 inside JSON strings.)
    """
    data = base64.b64decode(record["data"], validate=True)
    assert data.endswith(b"\n"), data[-200:]
    parsed = [json.loads(line) for line in data[:-1].split(b"\n")]
    assert parsed
    for hec in parsed:
        assert isinstance(hec, dict)
    return parsed


def check_hec_event(hec: dict[str, Any], settings: Settings, *, latest: float) -> None:
    assert set(hec) <= HEC_KEYS, hec.keys()
    when = hec["time"]
    assert isinstance(when, int | float)
    assert not isinstance(when, bool)
    # Epoch seconds (never ms): the message's own plausible time, or the arrival time.
    assert when == ARRIVAL or EARLIEST_PLAUSIBLE <= when <= latest, when
    sourcetype = hec["sourcetype"]
    assert sourcetype in ALL_SOURCETYPES
    body = hec["event"]
    assert isinstance(body, dict)
    fields = hec["fields"]  # docs/events.md: every sourcetype sets at least one
    assert isinstance(fields, dict)
    assert fields
    for key, value in fields.items():
        assert isinstance(key, str)
        assert isinstance(value, str)
    expected_index = settings.index_for(sourcetype)
    if expected_index is None:
        assert "index" not in hec
    else:
        assert hec["index"] == expected_index
    check_source(sourcetype, hec["source"])
    if "host" in hec:
        assert isinstance(hec["host"], str)
        assert THING_NAME.fullmatch(hec["host"]), hec["host"]
    if sourcetype == UNPARSED:
        assert body["reason_code"] in REASON_CODES, body["reason"]
        assert hec["fields"]["reason_code"] == body["reason_code"]
        assert isinstance(body["payload"], str)
        assert body["payload_encoding"] in {"utf-8", "base64"}
        if body["payload_encoding"] == "base64":
            base64.b64decode(body["payload"], validate=True)
        assert when == ARRIVAL


def check_source(sourcetype: str, source: object) -> None:
    """The stream ARN, an SNS topic ARN, a log group name or a metric stream; never else."""
    assert isinstance(source, str)
    if sourcetype == IOT_LOG:
        assert LOG_GROUP.fullmatch(source), source
    elif sourcetype == CLOUDWATCH_METRIC:
        assert METRIC_STREAM_SOURCE.fullmatch(source), source
    elif sourcetype in SNS_SOURCETYPES:
        assert source == STREAM_ARN or SNS_TOPIC_ARN.fullmatch(source), source
    else:
        assert source == STREAM_ARN, source


# --- building values from hypothesis-chosen bytes (tests/strategies.py) -----------------

LOG_MESSAGES = sorted(
    {
        log_event["message"]
        for path in fixture_paths("iot_logs")
        for log_event in json.loads(path.read_text(encoding="utf-8"))["logEvents"]
    }
)
LOG_GROUPS = ["AWSIotLogsV2", "AWSIotLogsV2", "AWSIotLogs", "", "index=main", "AWSIotLogsV2\n"]
MESSAGE_TYPES = ["DATA_MESSAGE", "DATA_MESSAGE", "CONTROL_MESSAGE", "OTHER"]
# Mostly plausible epoch ms; then seconds, ns, future, pre-2015, negative, huge and strings.
TIMESTAMPS: list[Any] = [
    1_795_165_358_214,
    1_795_165_361_021,
    1_795_165_358,
    1_795_165_358_214_000_000,
    4_102_444_800_000,
    1_262_304_000_000,
    0,
    -1,
    2**64 + 1,
    1e300,
    "1795165358214",
]


def build_log_event(choices: Choices) -> dict[str, Any]:
    kind = choices.below(4)
    if kind < 2:
        message: Any = choices.pick(LOG_MESSAGES)
    elif kind == 2:
        message = json.dumps(build_object(choices, 1))
    else:
        message = build_string(choices)
    log_event = {
        "id": build_string(choices),
        "timestamp": choices.pick(TIMESTAMPS),
        "message": message,
    }
    if choices.below(8) == 7:
        log_event[build_key(choices)] = build_json(choices, 2)
    return log_event


def build_cloudwatch(choices: Choices) -> dict[str, Any]:
    """A CloudWatch Logs subscription payload, often well-formed, sometimes not."""
    message_type = choices.pick(MESSAGE_TYPES)
    log_group = choices.pick(LOG_GROUPS)
    log_stream = build_string(choices)
    log_events = [build_log_event(choices) for _ in range(choices.count(3))]
    doc = iot_logs.subscription_payload(
        log_events, log_stream=log_stream, log_group=log_group, message_type=message_type
    )
    if choices.below(6) == 5:
        doc[build_key(choices)] = build_json(choices, 1)
    if choices.below(6) == 5:
        del doc[choices.pick(sorted(doc))]
    return doc


def build_json_payload(choices: Choices) -> bytes:
    """Random JSON serialized with json.dumps; a third gzip-compressed (the CloudWatch path)."""
    kind = choices.below(4)
    value = (
        build_json(choices)
        if kind == 0
        else build_object(choices)
        if kind == 1
        else build_cloudwatch(choices)
    )
    if kind == 3 or choices.below(4) == 0:
        return cloudwatch_gzip(value)
    return json.dumps(value).encode()


json_values = from_bytes(build_json)
json_payloads = from_bytes(build_json_payload)
random_bytes = st.one_of(
    st.binary(max_size=512),
    st.binary(max_size=64).map(lambda tail: b"\x1f\x8b" + tail),
)


def build_non_base64(choices: Choices) -> str:
    """A record data string that is not valid base64 (text without lone surrogates, which
    Firehose cannot send either; that case is in the bad-input catalogue)."""
    kind = choices.below(3)
    if kind == 0:
        text = build_string(choices) + "!"
    elif kind == 1:
        text = choices.pick(["abc", "a===", "====", "eyJhIjoxfQ", " aGVsbG8=", "aGVs\nbG8="])
    else:
        text = base64.b64encode(choices.take(choices.below(12) + 1)).decode()[:-1]
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text
    return text + "*"


non_base64_strings = from_bytes(build_non_base64, min_size=1)


# --- fixture mutations ----------------------------------------------------------------------

FIXTURES = fixture_paths()
FIXTURE_TEXT = {path: path.read_text(encoding="utf-8") for path in FIXTURES}


def parse_fixture(path: Path) -> Any:
    text = FIXTURE_TEXT[path]
    if path.suffix == ".ndjson":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)


def serialize_fixture(path: Path, doc: Any) -> bytes:
    if path.suffix == ".ndjson" and isinstance(doc, list):
        return "\n".join(json.dumps(line) for line in doc).encode() + b"\n"
    return json.dumps(doc).encode()


def build_mutated_fixture(choices: Choices) -> bytes:
    """A fixture, parsed, mutated 0-3 times, serialized, and maybe cut or bit-flipped.

    iot_logs fixtures are gzipped after mutating (damage before or after compressing).
    """
    path = choices.pick(FIXTURES)
    doc = parse_fixture(path)
    for _ in range(choices.below(4)):
        doc = mutate(choices, doc)
    kind = path.parent.name
    if kind in RULE_ROUTES:  # damaged as published, then forwarded by its rule
        added = (
            {k: doc.pop(k) for k in RULE_ADDED_KEYS if k in doc} if isinstance(doc, dict) else {}
        )
        message = damage_bytes(choices, serialize_fixture(path, doc))
        return rule_record(RULE_ROUTES[kind], message, **added)
    data = serialize_fixture(path, doc)
    if kind not in GZIPPED_KINDS:
        return damage_bytes(choices, data)
    if choices.below(2):
        return gzipped(damage_bytes(choices, data))
    return damage_bytes(choices, gzipped(data))


mutated_fixtures = from_bytes(build_mutated_fixture)


# --- device reports with device-controlled strings ------------------------------------------

# Injection attempts alone and after a plausible value (which include valid thing names such
# as "pump-0017main" and "aws:iot:defender:violation"), and a few plain valid names.
INJECTIONS = sorted(
    {
        prefix + attempt
        for prefix in ("", "pump-0017", "eth0", "10.0.0.1:443", "cpu_usage_pct")
        for attempt in ADVERSARIAL
    }
)
VALID_NAMES = ["pump-0017", "cam-lobby-2", "cpu_usage_pct", "eth0", "gw:berlin_03"]
REMOTE_ADDRS = ["198.51.100.40:443", "[2001:db8::1]:8883", "10.20.4.17", "[::1", "::1", ":"]
PORTS = [22, 0, 23, 65535, 65536, 70000, -1, 1883, 8883]
_SHORT_NAMES = {long: short for short, long in _LONG_NAMES.items()}


def device_string(choices: Choices) -> str:
    kind = choices.below(4)
    if kind == 0:
        return str(choices.pick(VALID_NAMES))
    if kind == 1:
        return build_string(choices)
    return str(choices.pick(INJECTIONS))


def build_port(choices: Choices) -> int:
    return int(choices.pick(PORTS)) if choices.below(2) else choices.below(65_536)


def build_port_list(choices: Choices) -> dict[str, Any]:
    port_list: dict[str, Any] = {}
    if choices.maybe():
        entries: list[dict[str, Any]] = [
            {"port": build_port(choices)} for _ in range(choices.count(3))
        ]
        for entry in entries:
            if choices.maybe():
                entry["interface"] = device_string(choices)
        port_list["ports"] = entries
    if choices.below(2):
        port_list["total"] = choices.below(100)
    return port_list


def build_connections(choices: Choices) -> list[dict[str, Any]]:
    connections = []
    for _ in range(choices.count(3)):
        address = device_string(choices) if choices.below(2) else choices.pick(REMOTE_ADDRS)
        connection: dict[str, Any] = {"remote_addr": address}
        if choices.maybe():
            connection["local_port"] = build_port(choices)
        if choices.maybe():
            connection["local_interface"] = device_string(choices)
        connections.append(connection)
    return connections


def build_custom_value(choices: Choices) -> list[dict[str, Any]]:
    kind = choices.below(4)
    if kind == 0:
        return [{"number": choices.pick([97.8, -1, 0, 2**63])}]
    if kind == 1:
        return [{"number_list": [63.0, 64.7][: choices.below(3)]}]
    strings = [device_string(choices) for _ in range(choices.count(2))]
    return [{"string_list" if kind == 2 else "ip_list": strings}]


def short_names(doc: Any) -> Any:
    """A report with Device Defender's short key names (custom metric names left alone)."""
    if isinstance(doc, list):
        return [short_names(item) for item in doc]
    if not isinstance(doc, dict):
        return doc
    return {
        _SHORT_NAMES.get(key, key): value if key == "custom_metrics" else short_names(value)
        for key, value in doc.items()
    }


def build_device_report(choices: Choices) -> bytes:
    """A device report as its IoT rule forwards it (the device's JSON, base64, beside the topic's
    thing name and the receive time), every device-controlled string an injection attempt."""
    report: dict[str, Any] = {"header": {"report_id": choices.below(2**24), "version": "1.0"}}
    parts = choices.below(3)
    if parts != 1:
        metrics: dict[str, Any] = {}
        for protocol in ("tcp", "udp"):
            if choices.maybe():
                metrics[f"listening_{protocol}_ports"] = build_port_list(choices)
        if choices.maybe():
            established = {"connections": build_connections(choices), "total": choices.below(9)}
            metrics["tcp_connections"] = {"established_connections": established}
        if choices.maybe():
            metrics["network_stats"] = {"bytes_in": 1180, "bytes_out": 9412, "packets_in": 21}
        report["metrics"] = metrics
    if parts != 0:
        report["custom_metrics"] = {
            device_string(choices): build_custom_value(choices) for _ in range(choices.count(3))
        }
    if choices.below(2):
        report = short_names(report)
    # Half the time a valid name, so the report's other strings reach the emitted events. The
    # name is the topic segment the device published on, so it is device-controlled as well.
    thing = choices.pick(VALID_NAMES) if choices.below(2) else device_string(choices)
    received = choices.pick([1_795_165_646.902, 4_102_444_800.0, 0.0])
    return device_report.forwarded(report, thing, received).data


device_reports = from_bytes(build_device_report)


# --- the properties -------------------------------------------------------------------------


@given(random_bytes)
def test_random_bytes(payload: bytes) -> None:
    run([payload])


@given(json_payloads)
def test_random_json(payload: bytes) -> None:
    run([payload])


@given(mutated_fixtures)
def test_fixture_mutations(payload: bytes) -> None:
    run([payload])


RECORD_KINDS: list[Callable[[Choices], Payload]] = [
    lambda choices: choices.take(choices.below(96)),  # random bytes
    lambda choices: b"\x1f\x8b" + choices.take(choices.below(32)),  # random "gzip"
    build_json_payload,
    build_mutated_fixture,
    build_non_base64,
]


def build_batch(choices: Choices) -> list[Payload]:
    """1-25 records mixing random bytes, random JSON, mutated fixtures and non-base64 data:
    up to three distinct records, some repeated (Firehose may deliver a record twice)."""
    distinct = [choices.pick(RECORD_KINDS)(choices) for _ in range(1 + choices.below(3))]
    return [choices.pick(distinct) for _ in range(1 + choices.below(25))]


batches = st.binary(min_size=96, max_size=480).map(lambda data: build_batch(Choices(data)))


@given(batches, st.sampled_from(SETTINGS_VARIANTS))
def test_mixed_batches(payloads: list[Payload], settings: Settings) -> None:
    run(payloads, settings)


@given(device_reports, st.sampled_from(SETTINGS_VARIANTS))
def test_device_strings_cannot_set_index_sourcetype_or_source(
    payload: bytes, settings: Settings
) -> None:
    thing_name = json.loads(payload)["thing_name"]
    for hec in run([payload], settings):
        assert hec["sourcetype"] in {METRIC, UNPARSED}
        assert hec["sourcetype"] in {METRIC, UNPARSED}
        assert hec.get("index") == settings.index_for(hec["sourcetype"])
        assert hec["source"] == STREAM_ARN
        if hec["sourcetype"] == METRIC:
            assert THING_NAME.fullmatch(thing_name)
            assert hec["event"]["thing"] == thing_name
            assert hec["host"] == thing_name
            assert hec["fields"]["thing"] == thing_name


# What each rule's route may become: its own kind, or unparsed (docs/events.md, 3.2).
ROUTE_SOURCETYPES = {"detect-export": {METRIC}, "device-report": {METRIC}, "lifecycle": {LIFECYCLE}}


def build_any_sample(choices: Choices) -> bytes:
    """Any input's sample, mutated: SNS alarms, findings, thing and response records, ..."""
    path = choices.pick(FIXTURES)
    return serialize_fixture(path, mutate(choices, parse_fixture(path)))


ANY_MESSAGE: list[Callable[[Choices], bytes]] = [
    lambda choices: json.dumps(build_json(choices)).encode(),
    lambda choices: json.dumps(build_object(choices)).encode(),
    build_any_sample,
]


def build_forwarded(choices: Choices) -> tuple[str, str, bytes]:
    """Whatever a client publishes on one of the rules' topics, as that rule forwards it."""
    route = choices.pick(sorted(ROUTE_SOURCETYPES))
    message = choices.pick(ANY_MESSAGE)(choices)
    thing = choices.pick(VALID_NAMES)
    added = (
        {"thing_name": thing, "received_at": 1_795_165_646_902} if route == "device-report" else {}
    )
    return route, thing, rule_record(route, message, **added)


@given(from_bytes(build_forwarded), st.sampled_from(SETTINGS_VARIANTS))
def test_what_a_rule_forwards_becomes_its_routes_kind_or_nothing(
    forwarded: tuple[str, str, bytes], settings: Settings
) -> None:
    """No message published on a rule's topic becomes another sourcetype or picks a source."""
    route, thing, record = forwarded
    for hec in run([record], settings):
        assert hec["sourcetype"] in ROUTE_SOURCETYPES[route] | {UNPARSED}, hec
        assert hec["source"] == STREAM_ARN
        if route == "device-report" and hec["sourcetype"] == METRIC:
            assert hec["host"] == thing


# docs/events.md, sections 2.2 and 2.5: the index-time fields each sourcetype sets (always,
# and when a condition holds), and which sourcetypes always or never have a host.
REQUIRED_FIELDS = {
    METRIC: {"thing", "metric", "origin"},
    VIOLATION: {"thing", "behavior", "violation_event_type"},
    AUDIT_TASK: {"task_id", "task_type", "task_status"},
    AUDIT_CHECK: {"task_id", "check_name", "check_run_status"},
    AUDIT_FINDING: {"check_name", "severity", "resource_type"},
    IOT_LOG: {"event_type"},
    LIFECYCLE: {"event_type"},
    CLOUDWATCH_METRIC: {"namespace", "metric_name"},
    THING: {"thing"},
    RESPONSE: {"action", "status"},
    UNPARSED: {"reason_code"},
}
OPTIONAL_FIELDS = {
    METRIC: {"report_id"},
    VIOLATION: {"metric", "security_profile"},
    AUDIT_FINDING: {"task_id"},
    IOT_LOG: {"status", "thing"},
    LIFECYCLE: {"thing"},
    THING: {"thing_type"},
    RESPONSE: {"thing"},
    UNPARSED: {"input_kind"},
}
HOST_ALWAYS = {METRIC, VIOLATION, THING}
HOST_NEVER = {AUDIT_TASK, AUDIT_CHECK, AUDIT_FINDING, CLOUDWATCH_METRIC, UNPARSED}


@given(st.one_of(mutated_fixtures, device_reports))
def test_events_follow_the_documented_fields_and_host(payload: bytes) -> None:
    for hec in run([payload]):
        sourcetype = hec["sourcetype"]
        keys = set(hec["fields"])
        assert REQUIRED_FIELDS[sourcetype] <= keys, (sourcetype, hec["fields"])
        assert keys <= REQUIRED_FIELDS[sourcetype] | OPTIONAL_FIELDS.get(sourcetype, set())
        if sourcetype == METRIC:
            assert hec["fields"]["origin"] in {"detect-export", "device-report"}
            assert not {"origin", "timestamp", "report_id"} & set(hec["event"]), (
                "not licensed twice"
            )
        if sourcetype in HOST_ALWAYS:
            assert "host" in hec
        if sourcetype in HOST_NEVER:
            assert "host" not in hec
        if "thing" in keys or "host" in hec:
            assert hec["fields"].get("thing") == hec.get("host"), hec
