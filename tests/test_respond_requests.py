"""Requests are validated before anything is read or changed; a bad one is refused by name."""

from __future__ import annotations

from typing import Any

import pytest

from respond.requests import InvalidInvocationError, RefusedError, parse_request

BASE = {
    "action": "quarantine_thing",
    "request_id": "soar-4711-quarantine-cam-lobby-2",
    "requested_by": "soar:iot_open_port_response:approved-by:jdoe",
    "reason": "telnet listening on tcp/23",
    "thing_name": "cam-lobby-2",
}


def test_a_valid_request_gets_its_defaults() -> None:
    request = parse_request(BASE)
    assert (request.action, request.request_id, request.dry_run) == (
        "quarantine_thing",
        "soar-4711-quarantine-cam-lobby-2",
        False,
    )
    assert request.params == {
        "thing_name": "cam-lobby-2",
        "keep_certificate": False,
        "disconnect": True,
    }
    assert request.changes


def test_describe_needs_no_requester_or_reason() -> None:
    request = parse_request({"action": "describe_thing", "request_id": "r-1", "thing_name": "a"})
    assert not request.changes


_KNOWN = (
    "known: describe_thing, quarantine_thing, quarantine_group, quarantine_version, "
    "release_thing, release_group, release_version, deactivate_certificate, "
    "remediate_audit_finding"
)
_REQUEST_ID = "request_id must be 1-64 of A-Z, a-z, 0-9 and '-' (the idempotency key)"
_THING = "thing_name must match [a-zA-Z0-9:_-]{1,128}"
_WHO_AND_WHY = "quarantine_thing changes AWS IoT: requested_by and reason are required"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"action": "reboot_thing"}, f"unknown action 'reboot_thing'; {_KNOWN}"),
        ({"action": None}, f"unknown action 'None'; {_KNOWN}"),
        ({"action": "x" * 100}, f"unknown action '{'x' * 64}'; {_KNOWN}"),
        ({"request_id": ""}, _REQUEST_ID),
        ({"request_id": "a" * 65}, _REQUEST_ID),
        ({"request_id": "soar 4711"}, _REQUEST_ID),
        ({"thing": "cam-lobby-2"}, "quarantine_thing takes no 'thing'"),
        ({"thing": 1, "extra": 2}, "quarantine_thing takes no 'extra', 'thing'"),
        ({"reason": ""}, _WHO_AND_WHY),
        ({"requested_by": "   "}, _WHO_AND_WHY),
        ({"reason": "x" * 2049}, "reason must be printable text of at most 2048 characters"),
        ({"reason": "line\nbreak"}, "reason must be printable text of at most 2048 characters"),
        ({"dry_run": "yes"}, "dry_run must be true or false"),
        ({"thing_name": "cam lobby"}, _THING),
        ({"thing_name": "cam-lobby-2\n"}, _THING),
        ({"thing_name": 42}, _THING),
        ({"keep_certificate": 1}, "keep_certificate must be true or false"),
    ],
)
def test_a_bad_request_is_refused_with_its_reason(changes: dict[str, Any], message: str) -> None:
    """The playbook shows the reason to the analyst: it is said whole, naming the rule."""
    with pytest.raises(RefusedError) as caught:
        parse_request({**BASE, **changes})
    assert str(caught.value) == message


@pytest.mark.parametrize("left_out", ["requested_by", "reason"])
def test_a_change_that_leaves_out_who_or_why_is_refused(left_out: str) -> None:
    event = {key: value for key, value in BASE.items() if key != left_out}
    with pytest.raises(RefusedError) as caught:
        parse_request(event)
    assert str(caught.value) == _WHO_AND_WHY


def test_a_missing_action_key_is_named() -> None:
    event = {key: value for key, value in BASE.items() if key != "thing_name"}
    with pytest.raises(RefusedError, match="quarantine_thing needs thing_name"):
        parse_request(event)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"thing_group": "cameras", "expected_count": -1}, "expected_count must be a whole number"),
        (
            {"thing_group": "cameras", "expected_count": True},
            "expected_count must be a whole number",
        ),
        (
            {"thing_group": "cameras", "expected_count": "3"},
            "expected_count must be a whole number",
        ),
        ({"thing_group": "cam eras", "expected_count": 3}, "thing_group must match"),
    ],
)
def test_fleet_requests_need_a_count_and_a_valid_scope(keys: dict[str, Any], message: str) -> None:
    event = {**BASE, "action": "quarantine_group", **keys}
    del event["thing_name"]
    with pytest.raises(RefusedError, match=message):
        parse_request(event)


@pytest.mark.parametrize("value", ["2.0.10 OR *", "a:b", "v(1)", "", "x" * 129])
def test_an_attribute_value_must_be_one_fleet_index_term(value: str) -> None:
    event = {
        **BASE,
        "action": "quarantine_version",
        "attribute": "firmware_version",
        "value": value,
        "expected_count": 1,
    }
    del event["thing_name"]
    with pytest.raises(RefusedError, match="value must match"):
        parse_request(event)


_EITHER = "remediate_audit_finding needs either finding_ids, or audit_task_id with check_name"
_EACH_FINDING = "finding_ids each finding id must match [a-zA-Z0-9_-]{1,128}"


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({}, _EITHER),
        (
            {"finding_ids": ["f1"], "audit_task_id": "t1", "check_name": "LOGGING_DISABLED_CHECK"},
            _EITHER,
        ),
        (
            {"audit_task_id": "t1"},
            "remediate_audit_finding needs both audit_task_id and check_name",
        ),
        ({"finding_ids": []}, "finding_ids must be a list of 1 to 25 finding ids"),
        (
            {"finding_ids": [f"f{n}" for n in range(26)]},
            "finding_ids must be a list of 1 to 25 finding ids",
        ),
        ({"finding_ids": ["f1", "f 2"]}, _EACH_FINDING),
        ({"finding_ids": ["f1", 42]}, _EACH_FINDING),
        ({"finding_ids": ["f1", "f1"]}, "finding_ids lists a finding twice"),
        (
            {"audit_task_id": "t1", "check_name": "NO_SUCH_CHECK"},
            "check_name must be a Device Defender audit check name",
        ),
    ],
    ids=[
        "no-target",
        "both-targets",
        "task-without-check",
        "no-findings",
        "26-findings",
        "a-bad-finding-id",
        "a-finding-id-not-text",
        "a-finding-twice",
        "unknown-check",
    ],
)
def test_audit_remediation_needs_one_kind_of_target(keys: dict[str, Any], message: str) -> None:
    event = {**BASE, "action": "remediate_audit_finding", **keys}
    del event["thing_name"]
    with pytest.raises(RefusedError) as caught:
        parse_request(event)
    assert str(caught.value) == message


def test_a_former_check_name_is_read_as_the_current_one() -> None:
    event = {
        **BASE,
        "action": "remediate_audit_finding",
        "audit_task_id": "t1",
        "check_name": "IOT_POLICY_UNRESTRICTED_CHECK",
    }
    del event["thing_name"]
    assert parse_request(event)["check_name"] == "IOT_POLICY_OVERLY_PERMISSIVE_CHECK"


@pytest.mark.parametrize("event", [["a"], "quarantine", None, 42])
def test_only_an_invocation_that_is_not_an_object_raises(event: object) -> None:
    """SOAR shows the error's message: it says what the responder takes and what it got."""
    with pytest.raises(InvalidInvocationError) as caught:
        parse_request(event)
    assert str(caught.value) == (f"the responder takes one JSON object, not {type(event).__name__}")


def test_text_at_its_limit_is_taken_trimmed() -> None:
    request = parse_request({**BASE, "requested_by": " " + "j" * 255, "reason": "r" * 2048})
    assert (request.requested_by, request.reason) == ("j" * 255, "r" * 2048)


def test_requested_by_past_256_characters_is_refused() -> None:
    with pytest.raises(RefusedError) as caught:
        parse_request({**BASE, "requested_by": "j" * 257})
    assert str(caught.value) == "requested_by must be printable text of at most 256 characters"


def test_a_fleet_count_of_zero_is_a_count() -> None:
    """An analyst expecting no thing in a group (to prove it empty) asks with 0."""
    event = {**BASE, "action": "release_group", "thing_group": "cameras", "expected_count": 0}
    del event["thing_name"]
    assert parse_request(event)["expected_count"] == 0


@pytest.mark.parametrize("count", [1, 25])
def test_one_to_25_findings_may_be_remediated_at_once(count: int) -> None:
    ids = [f"f{n}" for n in range(count)]
    event = {**BASE, "action": "remediate_audit_finding", "finding_ids": ids}
    del event["thing_name"]
    assert parse_request(event)["finding_ids"] == ids


def test_a_bad_certificate_id_is_refused_saying_what_one_looks_like() -> None:
    event = {**BASE, "action": "deactivate_certificate", "certificate_id": "AB12"}
    del event["thing_name"]
    with pytest.raises(RefusedError) as caught:
        parse_request(event)
    assert str(caught.value) == ("certificate_id (64 lowercase hex digits) must match [0-9a-f]{64}")
