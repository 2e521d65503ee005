"""Audit findings (the findings collector's records) -> aws:iot:defender:audit:finding events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import (
    fixture_id,
    fixture_paths,
    record_bytes,
    report_events,
    transform,
    transform_fixture,
)
from transform.sourcetypes import AUDIT_FINDING


@pytest.mark.parametrize("path", fixture_paths("audit_finding"), ids=fixture_id)
def test_each_finding_becomes_one_event(path: Path) -> None:
    doc = json.loads(path.read_text(encoding="utf-8"))
    findings = doc.get("findings", [doc])
    events = report_events(transform([record_bytes(path)]))

    assert len(events) == len(findings)
    for event, finding in zip(events, findings, strict=True):
        body = event["event"]
        assert event["sourcetype"] == AUDIT_FINDING
        assert {k: body[k] for k in finding} == finding
        assert event["time"] == pytest.approx(finding["findingTime"], abs=0.001)
        assert body["resource_type"] == finding["nonCompliantResource"]["resourceType"]
        assert event["fields"]["severity"] == finding["severity"]
        assert event["fields"]["check_name"] == body["check_name"]


def test_finding_resource_ids_are_flattened_for_search() -> None:
    policy = transform_fixture("audit_finding", "policy_overly_permissive.json")[0]["event"]
    identifier = policy["nonCompliantResource"]["resourceIdentifier"]["policyVersionIdentifier"]
    assert policy["resource_id"] == f"{identifier['policyName']}:{identifier['policyVersionId']}"

    shared = transform_fixture("audit_finding", "device_certificate_shared.json")[0]["event"]
    certificate = shared["nonCompliantResource"]["resourceIdentifier"]["deviceCertificateId"]
    assert shared["resource_id"] == certificate
    assert shared["severity"] == "CRITICAL"


def test_suppressed_findings_still_arrive_flagged() -> None:
    body = transform_fixture("audit_finding", "suppressed_finding.json")[0]["event"]
    assert body["isSuppressed"] is True
