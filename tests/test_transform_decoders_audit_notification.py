"""Audit notifications -> task and check events (check names and severities from the catalogue)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    STREAM_ARN,
    by_sourcetype,
    fixture_id,
    fixture_json,
    fixture_paths,
    record_bytes,
    report_events,
    transform,
    transform_fixture,
)

TASK = "aws:iot:defender:audit:task"
CHECK = "aws:iot:defender:audit:check"


def _notification(path: Path) -> tuple[dict[str, Any], str]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    if "TopicArn" in doc:
        return json.loads(doc["Message"]), doc["TopicArn"]
    return doc, STREAM_ARN


@pytest.mark.parametrize("path", fixture_paths("audit_notification"), ids=fixture_id)
def test_one_task_event_and_one_check_event_per_item(path: Path) -> None:
    notification, source = _notification(path)
    events = report_events(transform([record_bytes(path)]))

    tasks, checks = by_sourcetype(events, TASK), by_sourcetype(events, CHECK)
    assert len(tasks) == 1
    assert len(checks) == len(notification["auditDetails"])
    assert len(events) == 1 + len(checks)
    task = tasks[0]
    assert task["event"] == notification
    assert task["time"] == notification["taskStartTime"] / 1000
    assert task["source"] == source
    assert task["fields"] == {
        "task_id": notification["taskId"],
        "task_type": notification["taskType"],
        "task_status": notification["taskStatus"],
    }
    for check, item in zip(checks, notification["auditDetails"], strict=True):
        body = check["event"]
        assert {k: body[k] for k in item} == item
        assert body["taskId"] == notification["taskId"]
        assert body["taskStatus"] == notification["taskStatus"]
        assert body["taskType"] == notification["taskType"]
        assert check["time"] == task["time"]
        assert check["fields"]["check_name"] == body["check_name"]
        assert "host" not in check


def test_failed_and_canceled_audits_are_visible() -> None:
    statuses = {
        transform_fixture("audit_notification", name)[0]["event"]["taskStatus"]
        for name in ("failed_audit_sns.json", "canceled_audit_raw.json")
    }
    assert statuses == {"FAILED", "CANCELED"}
    failed_checks = by_sourcetype(
        transform_fixture("audit_notification", "failed_audit_sns.json"), CHECK
    )
    errors = [c["event"] for c in failed_checks if c["event"]["checkRunStatus"] == "FAILED"]
    assert errors
    assert all(e["errorCode"] == "INSUFFICIENT_PERMISSIONS" for e in errors)


def test_2020_check_names_are_mapped_to_current_names_and_severity() -> None:
    checks = by_sourcetype(
        transform_fixture("audit_notification", "old_check_names_sns.json"), CHECK
    )
    mapped = {
        c["event"]["checkName"]: (c["event"]["check_name"], c["event"]["severity"]) for c in checks
    }

    assert mapped["REVOKED_CA_CERT_CHECK"] == (
        "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK",
        "CRITICAL",
    )
    assert mapped["CA_CERT_APPROACHING_EXPIRATION_CHECK"] == (
        "CA_CERTIFICATE_EXPIRING_CHECK",
        "MEDIUM",
    )
    assert mapped["DEVICE_CERT_APPROACHING_EXPIRATION_CHECK"] == (
        "DEVICE_CERTIFICATE_EXPIRING_CHECK",
        "MEDIUM",
    )
    assert mapped["REVOKED_DEVICE_CERT_CHECK"] == (
        "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK",
        "MEDIUM",
    )
    assert mapped["IOT_POLICY_UNRESTRICTED_CHECK"] == (
        "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
        "CRITICAL",
    )
    assert mapped["LOGGING_DISABLED_CHECK"] == ("LOGGING_DISABLED_CHECK", "LOW")


def test_every_current_check_has_a_severity() -> None:
    checks = by_sourcetype(
        transform_fixture("audit_notification", "completed_scheduled_noncompliant_sns.json"), CHECK
    )
    assert len(checks) == 17
    assert all(c["event"]["severity"] in {"CRITICAL", "HIGH", "MEDIUM", "LOW"} for c in checks)


def test_a_check_unknown_to_the_catalogue_is_kept_without_severity() -> None:
    notification = fixture_json("audit_notification", "completed_on_demand_raw.json")
    notification["auditDetails"][0]["checkName"] = "SOME_FUTURE_CHECK"

    checks = by_sourcetype(report_events(transform([json.dumps(notification).encode()])), CHECK)

    future = next(c for c in checks if c["event"]["checkName"] == "SOME_FUTURE_CHECK")
    assert future["event"]["check_name"] == "SOME_FUTURE_CHECK"
    assert "severity" not in future["event"]
