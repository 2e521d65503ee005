"""Responder actions moto does not implement (Detect violations, audit findings and mitigation
tasks) against botocore's Stubber, and the audit trail through the real transform."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from appbuild.spl.fields import flatten
from respond import handler, things
from respond.actions import Responder
from respond.requests import parse_request
from tests.datasets import dataset_events
from tests.responder_aws import MITIGATIONS, QUARANTINE, REGION, Account, account, invoke, request
from tests.support import all_events, firehose_event

__all__ = ["account"]

FINDING_1 = "8d2e3c4b-1a2b-4c3d-9e8f-0a1b2c3d4e5f"
FINDING_2 = "9e3f4d5c-2b3c-4d4e-8f9a-1b2c3d4e5f6a"


def stubbed_iot() -> tuple[Any, Stubber]:
    client = boto3.client("iot", region_name=REGION)
    return client, Stubber(client)


def responder_with(iot: Any) -> Responder:
    return Responder(handler.settings(), iot, handler.store(), handler.end_session)


# --- describe_thing ----------------------------------------------------------------------------


def test_describe_gives_what_triage_needs(account: Account) -> None:
    (certificate,) = account.add_thing(
        "cam-lobby-2", groups=("cameras",), attributes={"firmware_version": "2.0.10"}
    )

    answer = invoke(request("describe_thing", thing_name="cam-lobby-2"))

    assert answer["status"] == "ok"
    (target,) = answer["targets"]
    described = target["before"]
    assert described["attributes"] == {"firmware_version": "2.0.10"}
    assert described["groups"] == ["cameras"]
    assert (described["quarantined"], described["protected"]) == (False, False)
    assert described["certificates"] == [{"certificate_id": certificate, "status": "ACTIVE"}]
    assert described["connectivity"]["connected"] is True  # moto's fleet index
    assert described["violations"] is None  # no Detect in this account
    assert described["quarantine"] is None
    assert account.response_records() == []  # a read leaves no audit record


def test_describe_shows_the_quarantine_record_of_a_quarantined_thing(account: Account) -> None:
    account.add_thing("cam-lobby-2")
    account.expect_disconnect("cam-lobby-2")
    invoke(request("quarantine_thing", thing_name="cam-lobby-2", request_id="q-1"))

    described = invoke(request("describe_thing", thing_name="cam-lobby-2"))["targets"][0]["before"]

    assert described["quarantined"] is True
    assert described["quarantine"]["request_id"] == "q-1"
    assert described["quarantine"]["reason"] == "telnet listening on tcp/23"


def test_active_violations_are_read_when_detect_answers() -> None:
    iot, stubber = stubbed_iot()
    started = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
    stubber.add_response(
        "list_active_violations",
        {
            "activeViolations": [
                {
                    "violationId": "37e1a7c4",
                    "thingName": "cam-lobby-2",
                    "securityProfileName": "iot-defender-splunk-rules",
                    "behavior": {"name": "ListeningTcpPorts", "metric": "aws:listening-tcp-ports"},
                    "violationStartTime": started,
                }
            ]
        },
        {"thingName": "cam-lobby-2", "maxResults": 250},
    )
    with stubber:
        violations = things.active_violations(iot, "cam-lobby-2")
    assert violations == [
        {
            "violation_id": "37e1a7c4",
            "behavior": "ListeningTcpPorts",
            "metric": "aws:listening-tcp-ports",
            "security_profile": "iot-defender-splunk-rules",
            "started_at": started.timestamp(),
        }
    ]


@pytest.mark.parametrize("code", ["AccessDeniedException", "ResourceNotFoundException"])
def test_without_detect_violations_are_none_not_an_error(code: str) -> None:
    iot, stubber = stubbed_iot()
    stubber.add_client_error("list_active_violations", service_error_code=code)
    with stubber:
        assert things.active_violations(iot, "cam-lobby-2") is None


# --- remediate_audit_finding -------------------------------------------------------------------


def _finding(finding_id: str, check: str) -> dict[str, Any]:
    return {"finding": {"findingId": finding_id, "checkName": check, "severity": "HIGH"}}


def test_findings_start_one_mitigation_task_with_the_stacks_actions(account: Account) -> None:
    iot, stubber = stubbed_iot()
    stubber.add_response(
        "describe_audit_finding",
        _finding(FINDING_1, "LOGGING_DISABLED_CHECK"),
        {"findingId": FINDING_1},
    )
    stubber.add_response(
        "describe_audit_finding",
        _finding(FINDING_2, "IOT_POLICY_OVERLY_PERMISSIVE_CHECK"),
        {"findingId": FINDING_2},
    )
    stubber.add_response(
        "start_audit_mitigation_actions_task",
        {"taskId": "iot-defender-r-remediate"},
        {
            "taskId": "iot-defender-r-remediate",
            "target": {"findingIds": [FINDING_1, FINDING_2]},
            "auditCheckToActionsMapping": {
                "IOT_POLICY_OVERLY_PERMISSIVE_CHECK": [
                    MITIGATIONS["IOT_POLICY_OVERLY_PERMISSIVE_CHECK"]
                ],
                "LOGGING_DISABLED_CHECK": [MITIGATIONS["LOGGING_DISABLED_CHECK"]],
            },
            "clientRequestToken": "r-remediate",
        },
    )
    ask = parse_request(
        request(
            "remediate_audit_finding", finding_ids=[FINDING_1, FINDING_2], request_id="r-remediate"
        )
    )
    with stubber:
        (target,) = responder_with(iot).remediate_audit_finding(ask)
    stubber.assert_no_pending_responses()
    assert target.status == "ok"
    assert target.after == {
        "task_id": "iot-defender-r-remediate",
        "actions": {
            "IOT_POLICY_OVERLY_PERMISSIVE_CHECK": [
                MITIGATIONS["IOT_POLICY_OVERLY_PERMISSIVE_CHECK"]
            ],
            "LOGGING_DISABLED_CHECK": [MITIGATIONS["LOGGING_DISABLED_CHECK"]],
        },
    }


def test_a_check_without_a_mitigation_action_is_refused(account: Account) -> None:
    iot, stubber = stubbed_iot()
    ask = parse_request(
        request(
            "remediate_audit_finding",
            audit_task_id="a1b2",
            check_name="CONFLICTING_CLIENT_IDS_CHECK",
        )
    )
    with stubber:  # no call at all
        (target,) = responder_with(iot).remediate_audit_finding(ask)
    assert target.status == "refused"
    assert target.message.startswith(
        "the stack has no mitigation action for CONFLICTING_CLIENT_IDS_CHECK"
    )


def test_a_dry_run_of_a_remediation_plans_without_starting(account: Account) -> None:
    iot, stubber = stubbed_iot()
    ask = parse_request(
        request(
            "remediate_audit_finding",
            audit_task_id="a1b2",
            check_name="LOGGING_DISABLED_CHECK",
            dry_run=True,
        )
    )
    with stubber:
        (target,) = responder_with(iot).remediate_audit_finding(ask)
    assert target.status == "planned"
    assert target.after == {
        "task_id": f"iot-defender-{ask.request_id}",
        "actions": {"LOGGING_DISABLED_CHECK": [MITIGATIONS["LOGGING_DISABLED_CHECK"]]},
    }


def test_a_task_already_started_for_the_request_is_a_noop(account: Account) -> None:
    iot, stubber = stubbed_iot()
    stubber.add_client_error(
        "start_audit_mitigation_actions_task", service_error_code="TaskAlreadyExistsException"
    )
    ask = parse_request(
        request(
            "remediate_audit_finding", audit_task_id="a1b2", check_name="LOGGING_DISABLED_CHECK"
        )
    )
    with stubber:
        (target,) = responder_with(iot).remediate_audit_finding(ask)
    assert target.status == "noop"


# --- the audit trail, through the real transform ---------------------------------------------


def test_response_records_become_the_response_events_the_datasets_hold(
    account: Account, run_handler: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    """The detections' datasets build their response records with the responder's own record
    code (appbuild/detection_data.py); a real quarantine and release give events of the same
    fields, so what the app is tested on is what it will get. Which fields the app reads:
    tests/test_dashboards.py."""
    account.add_thing("cam-lobby-2", groups=("cameras",))
    account.expect_disconnect("cam-lobby-2")
    invoke(request("quarantine_thing", thing_name="cam-lobby-2"))
    invoke(request("release_thing", thing_name="cam-lobby-2", reason="false positive"))

    event = firehose_event(account.firehose.accepted)
    response = run_handler(event)

    assert [r["result"] for r in response["records"]] == ["Ok", "Ok"]
    events = all_events(response)
    assert [e["sourcetype"] for e in events] == ["aws:iot:response"] * 2
    assert [(e["event"]["action"], e["event"]["status"], e["host"]) for e in events] == [
        ("quarantine_thing", "SUCCEEDED", "cam-lobby-2"),
        ("release_thing", "SUCCEEDED", "cam-lobby-2"),
    ]
    assert events[0]["event"]["details"]["after"]["groups"] == ["cameras", QUARANTINE]
    dataset = dataset_events("detections/data/response_actions.ndjson")
    for real in events:
        action = real["event"]["action"]
        built = next(
            e
            for e in dataset
            if (e["event"]["action"], e["event"]["status"]) == (action, "SUCCEEDED")
        )
        assert set(flatten(real["event"])) == set(flatten(built["event"])), action
        assert set(real["fields"]) == set(built["fields"]), action
