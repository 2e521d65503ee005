"""Responder actions moto does not implement (Detect violations, audit findings and mitigation
tasks) against botocore's Stubber, and the audit trail through the real transform."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from appbuild.spl.fields import flatten
from respond import handler, things
from respond.actions import Responder, failure
from respond.requests import Request, parse_request
from tests.datasets import dataset_events
from tests.responder_aws import (
    DEPLOYED_RESPONDER,
    MITIGATIONS,
    PROTECTED,
    QUARANTINE,
    REGION,
    Account,
    DetectBeside,
    account,
    invoke,
    request,
)
from tests.support import all_events, firehose_event

__all__ = ["account"]

FINDING_1 = "8d2e3c4b-1a2b-4c3d-9e8f-0a1b2c3d4e5f"
FINDING_2 = "9e3f4d5c-2b3c-4d4e-8f9a-1b2c3d4e5f6a"


def stubbed_iot() -> tuple[Any, Stubber]:
    client = boto3.client("iot", region_name=REGION)
    return client, Stubber(client)


def responder_with(iot: Any) -> Responder:
    return Responder(handler.settings(), iot, handler.store(), handler.end_session)


def test_an_aws_error_without_its_error_details_is_reported_with_an_empty_message() -> None:
    assert failure(ClientError({}, "UpdateCertificate")) == {"code": "", "message": ""}


# --- describe_thing ----------------------------------------------------------------------------


def test_describe_gives_what_triage_needs(account: Account) -> None:
    (certificate,) = account.add_thing(
        "cam-lobby-2", groups=("cameras",), attributes={"firmware_version": "2.0.10"}
    )

    answer = invoke(request("describe_thing", thing_name="cam-lobby-2"))

    assert answer["status"] == "ok"
    (target,) = answer["targets"]
    assert (target["thing_name"], target["message"]) == ("cam-lobby-2", "described cam-lobby-2")
    described = target["before"]
    assert described["thing_name"] == "cam-lobby-2"
    assert described["attributes"] == {"firmware_version": "2.0.10"}
    assert described["groups"] == ["cameras"]
    assert (described["quarantined"], described["protected"]) == (False, False)
    assert described["certificates"] == [{"certificate_id": certificate, "status": "ACTIVE"}]
    assert described["principals"] == []  # no principal but the certificate
    assert target["after"] == described  # a read changes nothing
    assert described["connectivity"]["connected"] is True  # moto's fleet index
    assert described["violations"] is None  # no Detect in this account
    assert described["quarantine"] is None
    assert account.response_records() == []  # a read leaves no audit record


def test_describe_names_the_things_type_and_whether_it_is_protected(account: Account) -> None:
    account.iot.create_thing_type(thingTypeName="ip-camera")
    account.iot.create_thing(thingName="plc-line-1", thingTypeName="ip-camera")
    account.group(PROTECTED)
    account.iot.add_thing_to_thing_group(thingGroupName=PROTECTED, thingName="plc-line-1")

    answer = invoke(request("describe_thing", thing_name="plc-line-1"))

    described = answer["targets"][0]["before"]
    assert (described["thing_type"], described["protected"]) == ("ip-camera", True)


def test_a_thing_described_without_attributes_has_empty_attributes_not_null(
    account: Account,
) -> None:
    """DescribeThing's attributes are optional in its API: a playbook reading
    ``attributes.firmware_version`` must find an object whether or not AWS sent the key."""
    account.iot.create_thing(thingName="plc-line-1")

    def without_attributes(parsed: dict[str, Any], **_: Any) -> None:
        parsed.pop("attributes", None)

    handler.iot_client().meta.events.register("after-call.iot.DescribeThing", without_attributes)

    described = invoke(request("describe_thing", thing_name="plc-line-1"))["targets"][0]["before"]

    assert described["attributes"] == {}


def test_describing_a_thing_that_does_not_exist_is_an_error_with_the_aws_code(
    account: Account,
) -> None:
    answer = invoke(request("describe_thing", thing_name="cam-lobby-9"))

    assert answer["status"] == "error"
    (target,) = answer["targets"]
    assert target == {
        "thing_name": "cam-lobby-9",
        "status": "error",
        "message": "cannot describe cam-lobby-9",
        "error": {"code": "ResourceNotFoundException", "message": target["error"]["message"]},
    }
    assert answer["error"] == target["error"]


def test_describe_shows_the_quarantine_record_of_a_quarantined_thing(account: Account) -> None:
    account.add_thing("cam-lobby-2")
    account.expect_disconnect("cam-lobby-2")
    invoke(request("quarantine_thing", thing_name="cam-lobby-2", request_id="q-1"))

    described = invoke(request("describe_thing", thing_name="cam-lobby-2"))["targets"][0]["before"]

    assert described["quarantined"] is True
    assert described["quarantine"]["request_id"] == "q-1"
    assert described["quarantine"]["requested_by"] == "soar:iot_open_port_response:approved-by:jdoe"
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


def test_the_deployed_responder_describes_a_thing_with_its_detect_violations(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    account.add_thing("cam-lobby-2")
    detect, stubber = stubbed_iot()
    violation = {
        "violationId": "37e1a7c4",
        "thingName": "cam-lobby-2",
        "securityProfileName": "iot-defender-splunk-rules",
        "behavior": {"name": "ListeningTcpPorts", "metric": "aws:listening-tcp-ports"},
    }
    stubber.add_response(
        "list_active_violations",
        {"activeViolations": [violation]},
        {"thingName": "cam-lobby-2", "maxResults": 250},
    )
    monkeypatch.setattr(handler, "iot_client", lambda: DetectBeside(account.iot, detect))
    monkeypatch.setattr(handler, "responder", DEPLOYED_RESPONDER)

    with stubber:
        answer = invoke(request("describe_thing", thing_name="cam-lobby-2"))

    assert answer["status"] == "ok", answer
    assert answer["targets"][0]["before"]["violations"] == [
        {
            "violation_id": "37e1a7c4",
            "behavior": "ListeningTcpPorts",
            "metric": "aws:listening-tcp-ports",
            "security_profile": "iot-defender-splunk-rules",
            "started_at": None,
        }
    ]


@pytest.mark.parametrize("code", ["AccessDeniedException", "ResourceNotFoundException"])
def test_without_detect_violations_are_none_not_an_error(code: str) -> None:
    iot, stubber = stubbed_iot()
    stubber.add_client_error("list_active_violations", service_error_code=code)
    with stubber:
        assert things.active_violations(iot, "cam-lobby-2") is None


# --- failures as the answer reports them ------------------------------------------------------


def test_an_aws_failure_is_its_code_and_its_message_cut_to_512_characters() -> None:
    long = ClientError(
        {"Error": {"Code": "InvalidRequestException", "Message": "x" * 600}}, "UpdateCertificate"
    )
    assert failure(long) == {"code": "InvalidRequestException", "message": "x" * 512}
    assert failure(ClientError({"Error": {}}, "UpdateCertificate")) == {"code": "", "message": ""}
    timed_out = failure(ReadTimeoutError(endpoint_url="https://" + "e" * 600))
    assert timed_out["code"] == "ReadTimeoutError"
    assert timed_out["message"] == 'Read timeout on endpoint URL: "https://' + "e" * 473


# --- remediate_audit_finding -------------------------------------------------------------------


def _finding(finding_id: str, check: str) -> dict[str, Any]:
    return {"finding": {"findingId": finding_id, "checkName": check, "severity": "HIGH"}}


def _logging_remediation() -> Request:
    return parse_request(
        request(
            "remediate_audit_finding",
            audit_task_id="a1b2",
            check_name="LOGGING_DISABLED_CHECK",
            request_id="r-remediate",
        )
    )


_LOGGING_TASK = {
    "task_id": "iot-defender-r-remediate",
    "actions": {"LOGGING_DISABLED_CHECK": [MITIGATIONS["LOGGING_DISABLED_CHECK"]]},
}


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
    assert target.as_dict() == {
        "finding_ids": [FINDING_1, FINDING_2],
        "status": "ok",
        "message": "started mitigation task iot-defender-r-remediate",
        "after": {
            "task_id": "iot-defender-r-remediate",
            "actions": {
                "IOT_POLICY_OVERLY_PERMISSIVE_CHECK": [
                    MITIGATIONS["IOT_POLICY_OVERLY_PERMISSIVE_CHECK"]
                ],
                "LOGGING_DISABLED_CHECK": [MITIGATIONS["LOGGING_DISABLED_CHECK"]],
            },
        },
    }


def test_checks_without_a_mitigation_action_are_refused_naming_them_and_the_stacks(
    account: Account,
) -> None:
    """The analyst sees which findings' checks the stack cannot mitigate, and what it can."""
    iot, stubber = stubbed_iot()
    for finding, check in (
        (FINDING_1, "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK"),
        (FINDING_2, "CONFLICTING_CLIENT_IDS_CHECK"),
    ):
        stubber.add_response(
            "describe_audit_finding", _finding(finding, check), {"findingId": finding}
        )
    ask = parse_request(request("remediate_audit_finding", finding_ids=[FINDING_1, FINDING_2]))
    with stubber:  # no task is started
        (target,) = responder_with(iot).remediate_audit_finding(ask)
    assert target.as_dict() == {
        "finding_ids": [FINDING_1, FINDING_2],
        "status": "refused",
        "message": "the stack has no mitigation action for CONFLICTING_CLIENT_IDS_CHECK, "
        "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK (it has: DEVICE_CERTIFICATE_SHARED_CHECK, "
        "IOT_POLICY_OVERLY_PERMISSIVE_CHECK, LOGGING_DISABLED_CHECK)",
    }


def test_a_stack_without_mitigation_actions_says_it_has_none(account: Account) -> None:
    iot, stubber = stubbed_iot()
    worker = responder_with(iot)
    worker.settings = replace(worker.settings, mitigation_actions={})
    with stubber:  # no call at all
        (target,) = worker.remediate_audit_finding(_logging_remediation())
    assert target.as_dict() == {
        "audit_task_id": "a1b2",
        "check_name": "LOGGING_DISABLED_CHECK",
        "status": "refused",
        "message": "the stack has no mitigation action for LOGGING_DISABLED_CHECK (it has: none)",
    }


def test_findings_that_cannot_be_read_are_an_error_and_start_nothing(account: Account) -> None:
    iot, stubber = stubbed_iot()
    stubber.add_response(
        "describe_audit_finding",
        _finding(FINDING_1, "LOGGING_DISABLED_CHECK"),
        {"findingId": FINDING_1},
    )
    stubber.add_client_error(
        "describe_audit_finding",
        service_error_code="ResourceNotFoundException",
        service_message="Finding not found",
    )
    ask = parse_request(request("remediate_audit_finding", finding_ids=[FINDING_1, FINDING_2]))
    with stubber:
        (target,) = responder_with(iot).remediate_audit_finding(ask)
    stubber.assert_no_pending_responses()
    assert target.as_dict() == {
        "finding_ids": [FINDING_1, FINDING_2],
        "status": "error",
        "message": "cannot read the findings",
        "error": {"code": "ResourceNotFoundException", "message": "Finding not found"},
    }


def test_a_dry_run_of_a_remediation_plans_without_starting(account: Account) -> None:
    iot, stubber = stubbed_iot()
    ask = replace(_logging_remediation(), dry_run=True)
    with stubber:  # no call at all
        (target,) = responder_with(iot).remediate_audit_finding(ask)
    assert target.as_dict() == {
        "audit_task_id": "a1b2",
        "check_name": "LOGGING_DISABLED_CHECK",
        "status": "planned",
        "message": "would have started mitigation task iot-defender-r-remediate",
        "after": _LOGGING_TASK,
    }


def test_a_task_already_started_for_the_request_is_a_noop_naming_it(account: Account) -> None:
    """A retry after a lost answer: the task runs once, and the analyst is told which."""
    iot, stubber = stubbed_iot()
    stubber.add_client_error(
        "start_audit_mitigation_actions_task", service_error_code="TaskAlreadyExistsException"
    )
    with stubber:
        (target,) = responder_with(iot).remediate_audit_finding(_logging_remediation())
    assert target.as_dict() == {
        "audit_task_id": "a1b2",
        "check_name": "LOGGING_DISABLED_CHECK",
        "status": "noop",
        "message": "mitigation task iot-defender-r-remediate already started",
        "after": _LOGGING_TASK,
    }


def _endpoint_down(**_: Any) -> Any:
    raise EndpointConnectionError(endpoint_url="https://iot.eu-west-1.amazonaws.com")


@pytest.mark.parametrize(
    ("fail", "error"),
    [
        (
            lambda stubber, _iot, _patch: stubber.add_client_error(
                "start_audit_mitigation_actions_task",
                service_error_code="LimitExceededException",
                service_message="Too many concurrent tasks",
            ),
            {"code": "LimitExceededException", "message": "Too many concurrent tasks"},
        ),
        (
            lambda _stubber, iot, patch: patch.setattr(
                iot, "start_audit_mitigation_actions_task", _endpoint_down
            ),
            {
                "code": "EndpointConnectionError",
                "message": 'Could not connect to the endpoint URL: "https://iot.eu-west-1.amazonaws.com"',
            },
        ),
    ],
    ids=["aws-refuses", "aws-unreachable"],
)
def test_a_mitigation_task_that_cannot_start_is_an_error_with_the_cause(
    account: Account,
    monkeypatch: pytest.MonkeyPatch,
    fail: Callable[[Stubber, Any, pytest.MonkeyPatch], None],
    error: dict[str, str],
) -> None:
    iot, stubber = stubbed_iot()
    fail(stubber, iot, monkeypatch)
    with stubber:
        (target,) = responder_with(iot).remediate_audit_finding(_logging_remediation())
    assert target.as_dict() == {
        "audit_task_id": "a1b2",
        "check_name": "LOGGING_DISABLED_CHECK",
        "status": "error",
        "message": "cannot start the mitigation task",
        "error": error,
    }


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
