"""The audit trail the responder puts into the stream: one aws:iot:response record per target
of an executed change (docs/events.md §6.2), nothing for a dry run or a read."""

from __future__ import annotations

import json
from typing import Any

import pytest

from respond.actions import ERROR, NOOP, OK, REFUSED, Target
from respond.records import response_records
from respond.requests import Request

REQUESTED_AT, COMPLETED_AT = 1795166400.1239, 1795166401.9871


def _request(action: str, *, dry_run: bool = False, **params: Any) -> Request:
    return Request(action, "req-7f3a", "soar:playbook-quarantine", "exfiltration", dry_run, params)


def _mitigation(key: dict[str, str]) -> Request:
    return Request("remediate_audit_finding", "req-7f3a", "soar", "shared certificate", False, key)


def _records(request: Request, *targets: Target) -> list[dict[str, Any]]:
    return [
        json.loads(record)
        for record in response_records(
            request,
            "resp-0001",
            list(targets),
            requested_at=REQUESTED_AT,
            completed_at=COMPLETED_AT,
        )
    ]


def test_a_quarantined_thing_is_one_record_holding_what_was_done_to_it() -> None:
    before: dict[str, Any] = {"groups": []}
    after: dict[str, Any] = {"groups": ["iot-defender-quarantine"]}
    target = Target(OK, "quarantined pump-0017", {"thing_name": "pump-0017"}, before, after)

    (record,) = _records(_request("quarantine_thing", thing_name="pump-0017"), target)

    assert record == {
        "recordType": "aws:iot:response",
        "schemaVersion": 1,
        "actionId": "resp-0001",
        "action": "quarantine_thing",
        "status": "SUCCEEDED",
        "requestedAt": 1795166400123,  # ms, cut (never rounded into the future)
        "completedAt": 1795166401987,
        "requestedBy": "soar:playbook-quarantine",
        "reason": "exfiltration",
        "target": {"thingName": "pump-0017"},
        "details": {
            "requestId": "req-7f3a",
            "message": "quarantined pump-0017",
            "before": before,
            "after": after,
        },
    }


@pytest.mark.parametrize(
    ("status", "shown"),
    [(OK, "SUCCEEDED"), (ERROR, "FAILED"), (NOOP, "SKIPPED"), (REFUSED, "SKIPPED")],
)
def test_each_outcome_has_its_status(status: str, shown: str) -> None:
    target = Target(status, "m", {"thing_name": "pump-0017"})
    (record,) = _records(_request("release_thing", thing_name="pump-0017"), target)
    assert record["status"] == shown


def test_a_failure_carries_its_error_and_no_before_or_after_it_does_not_have() -> None:
    error = {"code": "ThrottlingException", "message": "Rate exceeded"}
    target = Target(ERROR, "could not quarantine", {"thing_name": "pump-0017"}, error=error)

    (record,) = _records(_request("quarantine_thing", thing_name="pump-0017"), target)

    assert record["error"] == error
    assert record["details"] == {"requestId": "req-7f3a", "message": "could not quarantine"}


def test_a_group_action_names_the_group_on_every_things_record() -> None:
    request = _request("quarantine_group", thing_group="line-2", expected_count=2)
    targets = [Target(OK, "m", {"thing_name": name}) for name in ("plc-1", "plc-2")]

    records = _records(request, *targets)

    assert [r["target"] for r in records] == [
        {"thingName": "plc-1", "thingGroupName": "line-2"},
        {"thingName": "plc-2", "thingGroupName": "line-2"},
    ]
    assert "error" not in records[0]


def test_a_version_action_names_the_firmware_version() -> None:
    request = _request(
        "quarantine_version", attribute="firmware_version", value="4.2.1", expected_count=1
    )
    (record,) = _records(request, Target(OK, "m", {"thing_name": "cam-1"}))
    assert record["target"] == {"thingName": "cam-1", "firmwareVersion": "4.2.1"}


def test_a_certificate_target_is_named_by_its_id() -> None:
    request = _request("deactivate_certificate", certificate_id="ab12")
    (record,) = _records(request, Target(OK, "m", {"certificate_id": "ab12"}))
    assert record["target"] == {"certificateId": "ab12"}


def test_a_mitigation_names_its_audit_target() -> None:
    key = {"task_id": "t-1", "check_name": "DEVICE_CERTIFICATE_SHARED_CHECK"}
    request = _mitigation(key)
    (record,) = _records(request, Target(OK, "m", dict(key)))
    assert record["target"] == {"auditTarget": key}


def test_a_fleet_request_refused_before_naming_a_thing_shows_its_scope() -> None:
    request = _request("quarantine_version", attribute="model", value="x", expected_count=5)
    scope = {"attribute": "model", "value": "x"}
    (record,) = _records(request, Target(REFUSED, "over the cap", scope))
    assert record["target"] == {"scope": scope}


@pytest.mark.parametrize(
    "request_",
    [
        _request("quarantine_thing", dry_run=True, thing_name="pump-0017"),
        _request("describe_thing", thing_name="pump-0017"),
    ],
    ids=["dry-run", "read-only"],
)
def test_nothing_is_recorded_for_a_dry_run_or_a_read(request_: Request) -> None:
    assert _records(request_, Target(OK, "m", {"thing_name": "pump-0017"})) == []
