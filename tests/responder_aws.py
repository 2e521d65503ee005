"""An AWS account for the responder's tests: moto's IoT registry, DynamoDB and the stack's
tables, botocore's Stubber for the IoT data plane (DeleteConnection), and the one fake
Firehose for the audit trail. The responder module's cached clients point at it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from iot_defender_splunk.local_lambda import LocalLambdaContext
from respond import handler
from respond.actions import Responder
from tests.fakes import FakeFirehose

REGION = "eu-west-1"
QUARANTINE = "iot-defender-splunk-quarantine"
PROTECTED = "safety-critical"
STREAM = "iot-defender-splunk"
MITIGATIONS = {
    "LOGGING_DISABLED_CHECK": "iot-defender-splunk-enable-iot-logging",
    "IOT_POLICY_OVERLY_PERMISSIVE_CHECK": "iot-defender-splunk-replace-default-policy-version",
    "DEVICE_CERTIFICATE_SHARED_CHECK": "iot-defender-splunk-deactivate-device-certificate",
}
ENVIRONMENT = {
    "QUARANTINE_THING_GROUP": QUARANTINE,
    "STATE_TABLE": "responder-state",
    "IDEMPOTENCY_TABLE": "responder-idempotency",
    "DELIVERY_STREAM_NAME": STREAM,
    "PROTECTED_THING_GROUPS": PROTECTED,
    "FLEET_ACTION_CAP": "5",
    "MITIGATION_ACTIONS": json.dumps(MITIGATIONS),
    "AWS_DEFAULT_REGION": REGION,
}


@dataclass
class Account:
    """The moto account, with helpers to build a fleet and read back what changed."""

    iot: Any
    data_plane: Stubber
    firehose: FakeFirehose
    certificates: dict[str, list[str]] = field(default_factory=dict)
    disconnected: list[str] = field(default_factory=list)

    def add_thing(
        self,
        name: str,
        *,
        groups: tuple[str, ...] = (),
        attributes: dict[str, str] | None = None,
        certificates: tuple[str, ...] = ("ACTIVE",),
        share_with: tuple[str, ...] = (),
    ) -> list[str]:
        """A thing with certificates of the given statuses; returns their ids."""
        self.iot.create_thing(thingName=name, attributePayload={"attributes": attributes or {}})
        for group in groups:
            self.group(group)
            self.iot.add_thing_to_thing_group(thingGroupName=group, thingName=name)
        ids = []
        for status in certificates:
            created = self.iot.create_keys_and_certificate(setAsActive=status == "ACTIVE")
            if status not in {"ACTIVE", "INACTIVE"}:
                self.iot.update_certificate(
                    certificateId=created["certificateId"], newStatus=status
                )
            self.iot.attach_thing_principal(thingName=name, principal=created["certificateArn"])
            for other in share_with:
                self.iot.attach_thing_principal(
                    thingName=other, principal=created["certificateArn"]
                )
            ids.append(created["certificateId"])
        self.certificates[name] = ids
        return ids

    def group(self, name: str) -> None:
        existing = {g["groupName"] for g in self.iot.list_thing_groups()["thingGroups"]}
        if name not in existing:
            self.iot.create_thing_group(thingGroupName=name)

    def groups_of(self, name: str) -> list[str]:
        return sorted(
            g["groupName"]
            for g in self.iot.list_thing_groups_for_thing(thingName=name)["thingGroups"]
        )

    def status(self, certificate: str) -> str:
        return str(
            self.iot.describe_certificate(certificateId=certificate)["certificateDescription"][
                "status"
            ]
        )

    def expect_disconnect(self, name: str) -> None:
        self.data_plane.add_response(
            "delete_connection", {}, {"clientId": name, "preventWillMessage": True}
        )

    def response_records(self) -> list[dict[str, Any]]:
        return [json.loads(payload) for payload in self.firehose.accepted]


# The handler's own responder, before the fixture swaps in one that never asks Detect.
DEPLOYED_RESPONDER = handler.responder


class DetectBeside:
    """An IoT client for the deployed responder: moto's registry for everything, except that
    Detect's violations (which moto lacks) come from ``detect``, a client under a Stubber."""

    def __init__(self, registry: Any, detect: Any) -> None:
        self._registry = registry
        self._detect = detect

    def get_paginator(self, operation: str) -> Any:
        client = self._detect if operation == "list_active_violations" else self._registry
        return client.get_paginator(operation)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._registry, name)


def metrics(stdout: str) -> dict[str, list[float]]:
    """Each metric the handler published, by name, from the EMF blob it printed."""
    lines = (json.loads(line) for line in stdout.splitlines() if line.startswith("{"))
    (blob,) = (line for line in lines if "_aws" in line)
    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    return {metric["Name"]: blob[metric["Name"]] for metric in directive["Metrics"]}


def invoke(request: object, remaining_ms: int = 60_000) -> Any:
    return handler.lambda_handler(request, LocalLambdaContext(remaining_ms=remaining_ms))


def request(action: str, **keys: Any) -> dict[str, Any]:
    """A request as a playbook sends it, with the fields every changing action needs."""
    return {
        "action": action,
        "request_id": keys.pop("request_id", f"test-{action.replace('_', '-')}"),
        "requested_by": "soar:iot_open_port_response:approved-by:jdoe",
        "reason": "telnet listening on tcp/23",
        **keys,
    }


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[Account]:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    handler.reset_container()
    with mock_aws():
        iot = boto3.client("iot", region_name=REGION)
        iot.create_thing_group(thingGroupName=QUARANTINE)
        iot.create_thing_group(thingGroupName=PROTECTED)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        for table, key in (("responder-state", "thing_name"), ("responder-idempotency", "id")):
            dynamodb.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        data = boto3.client("iot-data", region_name=REGION, endpoint_url="https://data.iot.test")
        stubber = Stubber(data)
        firehose = FakeFirehose(STREAM)
        monkeypatch.setattr(handler, "iot_data_client", lambda: data)
        monkeypatch.setattr(handler, "firehose_client", lambda: firehose)
        # moto has no Detect: tests that need violations pass their own.
        monkeypatch.setattr(handler, "responder", _responder_without_detect)
        with stubber:
            yield Account(iot, stubber, firehose)
        stubber.assert_no_pending_responses()
    handler.reset_container()


def _responder_without_detect() -> Any:
    worker = Responder(
        handler.settings(), handler.iot_client(), handler.store(), handler.end_session
    )
    worker.violations = lambda _thing: None
    return worker
