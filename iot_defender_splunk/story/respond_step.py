"""The response step on a local stand-in for AWS IoT: the real responder handler quarantines
the open-port incident's device in moto's IoT registry, as the IoT Open Port Response playbook
asks it to (docs/response.md), and its audit trail goes through the real transform.

moto has no IoT data plane, so DeleteConnection is answered by botocore's Stubber; the audit
trail's PutRecordBatch goes to the simulator's local delivery stream.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO
from unittest import mock

import boto3
from botocore.stub import Stubber
from moto import mock_aws

from iot_defender_splunk.local_lambda import LocalLambdaContext
from iot_defender_splunk.simulator.fleet import Device
from iot_defender_splunk.simulator.runner import LocalStream
from respond import handler

REGION = "eu-west-1"
QUARANTINE_GROUP = "iot-defender-splunk-quarantine"
DEVICE_POLICY = "iot-defender-splunk-device"
# The stack's responder environment (sam/template.yaml), with moto's tables.
ENVIRONMENT = {
    "QUARANTINE_THING_GROUP": QUARANTINE_GROUP,
    "STATE_TABLE": "iot-defender-splunk-responder-state",
    "IDEMPOTENCY_TABLE": "iot-defender-splunk-responder-idempotency",
    "DELIVERY_STREAM_NAME": "iot-defender-splunk",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "moto",
    "AWS_SECRET_ACCESS_KEY": "moto",
}
_TABLE_KEYS = {ENVIRONMENT["STATE_TABLE"]: "thing_name", ENVIRONMENT["IDEMPOTENCY_TABLE"]: "id"}
SOAR_CONTAINER = 1
PLAYBOOK = "iot_open_port_response"


@dataclass(frozen=True)
class Quarantine:
    """What the step asked, what the responder answered, and the registry before and after."""

    request: dict[str, Any]
    answer: dict[str, Any]
    groups_before: tuple[str, ...]
    groups_after: tuple[str, ...]
    certificate_before: str
    certificate_after: str
    records: tuple[bytes, ...]  # the aws:iot:response records the responder put


def playbook_request(device: Device, findings: list[str], container_name: str) -> dict[str, Any]:
    """The quarantine_thing request IoT Open Port Response sends for an auto-approved device
    (its request_id: container, step and a digest of the thing)."""
    digest = hashlib.sha256(device.name.encode()).hexdigest()[:12]
    reason = f"{container_name} (SOAR container {SOAR_CONTAINER}): {device.name}: "
    return {
        "action": "quarantine_thing",
        "request_id": f"soar-{SOAR_CONTAINER}-port-quarantine-{digest}",
        "requested_by": f"soar:{PLAYBOOK}:auto-approved",
        "reason": reason + "; ".join(findings),
        "thing_name": device.name,
        "keep_certificate": False,
        "disconnect": True,
    }


def quarantine(device: Device, request: dict[str, Any], log: TextIO) -> Quarantine:
    """``request`` through the responder's handler against a moto account holding ``device``;
    what the Lambda would print goes to ``log``."""
    with _account() as (iot, stream), _quiet(log):
        certificate = _register(iot, device)
        groups_before, certificate_before = _groups(iot, device.name), _status(iot, certificate)
        answer = handler.lambda_handler(request, LocalLambdaContext())
        return Quarantine(
            request,
            answer,
            groups_before,
            _groups(iot, device.name),
            certificate_before,
            _status(iot, certificate),
            tuple(stream.pending),
        )


@contextlib.contextmanager
def _account() -> Iterator[tuple[Any, LocalStream]]:
    """A moto account with the stack's quarantine group and tables; the handler's cached
    clients are built inside it and forgotten after."""
    stream = LocalStream()
    # None of the caller's AWS settings (a profile, an endpoint, real keys) reach the stand-in.
    local = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    with mock.patch.dict(os.environ, local | ENVIRONMENT, clear=True), mock_aws():
        handler.reset_container()
        iot = boto3.client("iot", region_name=REGION)
        iot.create_thing_group(thingGroupName=QUARANTINE_GROUP)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        for table, key in _TABLE_KEYS.items():
            dynamodb.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        data_plane = boto3.client(
            "iot-data", region_name=REGION, endpoint_url="https://data.iot.local"
        )
        stubber = Stubber(data_plane)
        stubber.add_response("delete_connection", {}, None)
        with (
            stubber,
            mock.patch.object(handler, "iot_data_client", return_value=data_plane),
            mock.patch.object(handler, "firehose_client", return_value=stream),
        ):
            try:
                yield iot, stream
            finally:
                handler.reset_container()


@contextlib.contextmanager
def _quiet(log: TextIO) -> Iterator[None]:
    """The responder's structured logs and EMF metrics to ``log`` instead of the terminal."""
    stream = handler.logger.registered_handler
    previous = stream.setStream(log) if isinstance(stream, logging.StreamHandler) else None
    try:
        with contextlib.redirect_stdout(log):
            yield
    finally:
        if isinstance(stream, logging.StreamHandler) and previous is not None:
            stream.setStream(previous)


def _register(iot: Any, device: Device) -> str:
    """The device's thing, groups, active certificate and policy; returns the certificate id."""
    attributes = {"attributes": device.attributes}
    iot.create_thing(thingName=device.name, attributePayload=attributes)
    for group in device.groups:
        iot.create_thing_group(thingGroupName=group)
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=device.name)
    certificate = iot.create_keys_and_certificate(setAsActive=True)
    iot.attach_thing_principal(thingName=device.name, principal=certificate["certificateArn"])
    document = {"Version": "2012-10-17", "Statement": [_device_statement(device.name)]}
    iot.create_policy(policyName=DEVICE_POLICY, policyDocument=json.dumps(document))
    iot.attach_policy(policyName=DEVICE_POLICY, target=certificate["certificateArn"])
    return str(certificate["certificateId"])


def _device_statement(thing: str) -> dict[str, Any]:
    client = f"arn:aws:iot:{REGION}:123456789012:client/{thing}"
    return {"Effect": "Allow", "Action": ["iot:Connect"], "Resource": client}


def _groups(iot: Any, thing: str) -> tuple[str, ...]:
    listed = iot.list_thing_groups_for_thing(thingName=thing)["thingGroups"]
    return tuple(sorted(group["groupName"] for group in listed))


def _status(iot: Any, certificate: str) -> str:
    description = iot.describe_certificate(certificateId=certificate)["certificateDescription"]
    return str(description["status"])
