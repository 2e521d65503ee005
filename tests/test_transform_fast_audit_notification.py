"""The audit-notification fast path (transform.fast.audit_notification) against the reference
decoders: the same batches in, the same events, counters, outcomes and re-put payloads out."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iot_defender_splunk.simulator.audit import AUDIT_TOPIC
from iot_defender_splunk.simulator.sns import notification as sns_notification
from tests.fast_paths import SMALL_LIMIT, assert_paths_agree, compact
from tests.support import NOW
from transform.config import Settings
from transform.context import Invocation
from transform.fast import audit_notification as fast_audit

Doc = dict[str, Any]
SENT = 1_793_684_300.0  # November 2026, before the tests' arrival time
CURRENT, FORMER = "IOT_POLICY_OVERLY_PERMISSIVE_CHECK", "IOT_POLICY_UNRESTRICTED_CHECK"


def detail(name: str = CURRENT, **changes: object) -> Doc:
    """One auditDetails item as Audit writes it."""
    base: Doc = {
        "checkName": name,
        "checkRunStatus": "COMPLETED_NON_COMPLIANT",
        "nonCompliantResourcesCount": 3,
        "totalResourcesCount": 1248,
    }
    return {**base, **changes}


def message(*details: Doc, **changes: object) -> Doc:
    """An audit completion notification, keys in Audit's order."""
    base: Doc = {
        "accountId": "123456789012",
        "taskId": "f64b5fb5898c0a6b3abca69435486798",
        "taskStatus": "COMPLETED",
        "taskType": "SCHEDULED_AUDIT_TASK",
        "scheduledAuditName": "weekly-full-audit",
        "failedChecksCount": 0,
        "canceledChecksCount": 0,
        "nonCompliantChecksCount": len(details),
        "compliantChecksCount": 0,
        "totalChecksCount": len(details),
        "taskStartTime": 1_793_684_120_000,
        "auditDetails": list(details),
    }
    return {**base, **changes}


def sns_record(text: str, **changes: object) -> bytes:
    """The notification SNS delivers with ``text`` as its Message."""
    return compact({**sns_notification(AUDIT_TOPIC, {}, SENT), "Message": text, **changes})


def record(doc: Doc) -> bytes:
    return sns_record(compact(doc).decode())


CHECK_NAMES = [CURRENT, FORMER, "CUSTOM_FLEET_CHECK", "lower_case_check", CURRENT + "\n", ""]
STATUSES = ["COMPLETED_COMPLIANT", "COMPLETED_NON_COMPLIANT", "FAILED", "WAITING"]
COUNTS = st.sampled_from([0, 7, 25_000, -1, 2**64, 1.0])
TEXTS = st.sampled_from(["Access denied", "naïve \u2028 ☃", 'quote"and\\slash', ""])
TIMES = st.sampled_from(
    [1_793_684_120_000, 1_793_684_120.5, "2026-11-03T09:35:20Z", -5, 0, 4_000_000_000_000]
)


@st.composite
def details(draw: st.DrawFn) -> Doc:
    item = detail(
        draw(st.sampled_from(CHECK_NAMES)), checkRunStatus=draw(st.sampled_from(STATUSES))
    )
    for key in ("nonCompliantResourcesCount", "suppressedNonCompliantResourcesCount"):
        if draw(st.booleans()):
            item[key] = draw(COUNTS)
    if draw(st.booleans()):
        item |= {"errorCode": "AUDIT_ROLE_NOT_AUTHORIZED", "message": draw(TEXTS)}
    return item


@st.composite
def messages(draw: st.DrawFn) -> str:
    """A notification's Message text: mostly Audit's own, sometimes odd in value or spelling."""
    doc = message(*draw(st.lists(details(), max_size=4)), taskStartTime=draw(TIMES))
    doc["accountId"] = draw(st.sampled_from(["123456789012"] * 4 + ["12345678901\n", "1234"]))
    doc["taskId"] = draw(st.sampled_from(["task-1_A"] * 4 + ["t" * 41, "task\n"]))
    if draw(st.booleans()):
        doc["scheduledAuditName"] = draw(TEXTS | st.just("a" * 129))
    if draw(st.booleans()):
        del doc[draw(st.sampled_from(["accountId", "scheduledAuditName", "taskStatus"]))]
    if draw(st.booleans()):  # an extra key, or the keys in another order
        doc = draw(st.sampled_from([{**doc, "extra": 1}, dict(reversed(doc.items()))]))
    ascii_only, indent = draw(st.booleans()), draw(st.sampled_from([None, None, 1]))
    separators = (",", ":") if indent is None else None
    return json.dumps(doc, ensure_ascii=ascii_only, separators=separators, indent=indent)


@st.composite
def records(draw: st.DrawFn) -> bytes:
    text = draw(messages())
    changes = draw(
        st.sampled_from(
            [{}, {}, {"TopicArn": AUDIT_TOPIC + "\n"}, {"Type": "SubscriptionConfirmation"}]
        )
    )
    return sns_record(text, **changes)


@given(
    st.lists(records(), min_size=1, max_size=5),
    st.sampled_from([6_000_000, SMALL_LIMIT]),
    st.sampled_from([None, "iot_security"]),
)
def test_fast_and_reference_paths_agree_on_fuzzed_notifications(
    payloads: list[bytes], limit: int, index: str | None
) -> None:
    assert_paths_agree(payloads, Settings(default_index=index, response_limit_bytes=limit))


ADVERSARIAL: dict[str, list[bytes]] = {
    "former_and_unknown_check_names": [record(message(detail(FORMER), detail("MY_FLEET_CHECK")))],
    "no_checks": [record(message())],
    "invalid_check_beside_valid_ones": [
        record(message(detail(), detail(checkRunStatus="DONE"), detail("bad name")))
    ],
    "check_name_with_a_newline": [record(message(detail(CURRENT + "\n")))],
    "time_as_iso_text_and_seconds": [
        record(message(detail(), taskStartTime="2026-11-03T09:35:20.000Z")),
        record(message(detail(), taskStartTime=1_793_684_120)),
    ],
    "implausible_times": [
        record(message(detail(), taskStartTime=4_000_000_000_000)),
        record(message(detail(), taskStartTime="not a time")),
        record(message(detail(), taskStartTime=True)),
    ],
    "message_escaped_to_ascii": [
        sns_record(json.dumps(message(detail(message="naïve")), separators=(",", ":")))
    ],
    "repeated_key_in_the_message": [
        sns_record(compact(message(detail())).decode().replace("{", '{"taskId":"first",', 1))
    ],
    "message_not_json": [sns_record("{not json")],
    "envelope_the_sns_schema_refuses": [
        sns_record(compact(message(detail())).decode(), TopicArn=AUDIT_TOPIC + "\n"),
        sns_record(compact(message(detail())).decode(), Type="SubscriptionConfirmation"),
    ],
    "lone_surrogate_in_the_message": [sns_record('{"taskId":"\\ud800"}')],
    "rule_envelope_keys_beside_sns": [
        compact({**json.loads(record(message(detail()))), "route": "x", "payload": "e30="})
    ],
    "a_violation_shaped_message": [record({**message(detail()), "violationId": "v-1"})],
    "large_integer_counts": [
        record(message(detail(totalResourcesCount=2**63))),
        record(message(detail(totalResourcesCount=2**64))),
    ],
}


@pytest.mark.parametrize("case", sorted(ADVERSARIAL))
@pytest.mark.parametrize("limit", [6_000_000, SMALL_LIMIT])
def test_fast_and_reference_paths_agree_on_adversarial_notifications(case: str, limit: int) -> None:
    assert_paths_agree(ADVERSARIAL[case], Settings(response_limit_bytes=limit))


def invocation() -> Invocation:
    return Invocation(settings=Settings(), now=NOW, stream_source="arn:aws:firehose:stream")


def test_the_fast_path_takes_what_audit_sends() -> None:
    """Otherwise the differential tests would compare the reference path with itself."""
    delivered = record(message(detail(FORMER), detail(checkRunStatus="COMPLETED_COMPLIANT")))
    taken = fast_audit.transform(delivered, invocation())
    assert taken is not None
    lines, counts = taken
    assert counts == {"aws:iot:defender:audit:task": 1, "aws:iot:defender:audit:check": 2}
    first_check = json.loads(lines.split(b"\n")[1])
    assert first_check["event"]["check_name"] == CURRENT  # the 2020-era name, renamed
    assert first_check["source"] == AUDIT_TOPIC
    report = assert_paths_agree([delivered], Settings())
    assert base64.b64decode(report.outcomes[0].data) == lines


@pytest.mark.parametrize(
    "delivered",
    ADVERSARIAL["check_name_with_a_newline"]
    + ADVERSARIAL["message_escaped_to_ascii"]
    + ADVERSARIAL["repeated_key_in_the_message"]
    + ADVERSARIAL["a_violation_shaped_message"]
    + ADVERSARIAL["implausible_times"][:1]
    + [record(message(detail(), accountId="12345678901\n"))],
    ids=["newline_in_check", "ascii_escapes", "repeated_key", "extra_key", "future", "account"],
)
def test_the_fast_path_refuses_what_it_cannot_vouch_for(delivered: bytes) -> None:
    assert fast_audit.transform(delivered, invocation()) is None
