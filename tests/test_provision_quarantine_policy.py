"""The quarantine policy custom resource, run through crhelper against moto's IoT.

Each test calls the real ``lambda_handler`` with a CloudFormation request and reads back the
response crhelper PUTs to the presigned ResponseURL. That PUT is caught at
``crhelper.utils.HTTPSConnection``, the one name crhelper looks up at call time: its
``_send`` and ``_wait_for_cwlogs`` bind their senders and sleep as default arguments.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
import crhelper.utils
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from devtools.samples import SAMPLES_DIR
from provision import quarantine_policy
from provision.quarantine_policy import Attachment, lambda_handler

REQUESTS = SAMPLES_DIR / "custom_resource" / "requests"
REGION = "eu-west-1"
POLICY = "iot-defender-splunk-quarantine-deny"
POLICY_V2 = "iot-defender-splunk-quarantine-deny-v2"
GROUP_NAME = "iot-defender-splunk-quarantine"
GROUP_ARN = f"arn:aws:iot:{REGION}:123456789012:thinggroup/{GROUP_NAME}"
POLICY_ID = f"{POLICY}|{GROUP_ARN}"
POLICY_V2_ID = f"{POLICY_V2}|{GROUP_ARN}"
DENY_EVERYTHING = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "iot:*", "Resource": "*"}]}
)
# What crhelper makes up for a Create that failed before returning an id.
GENERATED_ID = re.compile(r"iot-defender-splunk_QuarantinePolicyAttachment_[A-Z0-9]{8}")


@dataclass
class Sent:
    """One HTTP request crhelper made to answer CloudFormation."""

    host: str
    method: str
    url: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeContext:
    """What crhelper reads from the Lambda context: it times out early to still answer."""

    aws_request_id = "3c1f6a2e-8d4b-4f0a-9e7c-5b2d1a0f9e8c"
    function_name = "iot-defender-splunk-QuarantinePolicyAttacher-Xq3LbT9vKc2m"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture(autouse=True)
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Sent]]:
    """Catch crhelper's responses, and give each test a fresh helper, clients and loggers."""
    responses: list[Sent] = []

    class FakeResponse:
        reason = "OK"

    class FakeHTTPSConnection:
        def __init__(self, host: str, **_kwargs: Any) -> None:
            self.host = host

        def request(self, *, method: str, url: str, body: str, headers: dict[str, str]) -> None:
            responses.append(Sent(self.host, method, url, headers, json.loads(body)))

        def getresponse(self) -> FakeResponse:
            return FakeResponse()

    monkeypatch.setattr(crhelper.utils, "HTTPSConnection", FakeHTTPSConnection)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setattr(quarantine_policy, "SLEEP_ON_DELETE_SECONDS", 0)
    # crhelper sets the root and boto loggers' levels on every call: put them back afterwards.
    names = ["", "boto", "boto3", "botocore", "urllib3"]
    levels = {name: logging.getLogger(name).level for name in names}
    # Held here: by teardown, a test may have monkeypatched iot_client (undone only later).
    caches = [quarantine_policy._helper, quarantine_policy.iot_client]
    for cached in caches:
        cached.cache_clear()
    yield responses
    for cached in caches:
        cached.cache_clear()
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def iot() -> Iterator[Any]:
    """moto's IoT, holding the stack's two deny policies and the quarantine group."""
    with mock_aws():
        client = boto3.client("iot", region_name=REGION)
        for name in (POLICY, POLICY_V2):
            client.create_policy(policyName=name, policyDocument=DENY_EVERYTHING)
        created = client.create_thing_group(thingGroupName=GROUP_NAME)
        assert created["thingGroupArn"] == GROUP_ARN
        yield client


@pytest.fixture
def no_iot_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record any attempt to create an IoT client: these tests must not reach AWS."""
    attempts: list[str] = []

    def refuse(region: str) -> Any:
        attempts.append(region)
        raise AssertionError("no IoT call was expected")

    monkeypatch.setattr(quarantine_policy, "iot_client", refuse)
    return attempts


def request(name: str) -> dict[str, Any]:
    """A fresh copy of one stored CloudFormation request."""
    event: dict[str, Any] = json.loads((REQUESTS / f"{name}.json").read_text(encoding="utf-8"))
    return event


def invoke(event: dict[str, Any], sent: list[Sent]) -> dict[str, Any]:
    """Run the handler and return the one response it PUT to the event's ResponseURL."""
    before = len(sent)
    lambda_handler(event, FakeContext())
    assert len(sent) == before + 1, "exactly one response per request"
    response = sent[-1]
    url = urlsplit(event["ResponseURL"])
    assert response.method == "PUT"
    assert response.host == url.netloc
    assert response.url == f"{url.path}?{url.query}"
    # The presigned URL signs no content type, so the PUT must send an empty one.
    assert response.headers["content-type"] == ""
    assert response.headers["content-length"] == str(len(json.dumps(response.body)))
    return response.body


def answer(
    event: dict[str, Any], status: str, physical_id: str, reason: str = ""
) -> dict[str, Any]:
    """The exact response body expected for ``event``."""
    return {
        "Status": status,
        "PhysicalResourceId": physical_id,
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Reason": reason,
        "Data": {},
        "NoEcho": False,
    }


def attached(iot: Any) -> list[str]:
    return sorted(p["policyName"] for p in iot.list_attached_policies(target=GROUP_ARN)["policies"])


# --- the request fixtures as CloudFormation sends them ------------------------------------------


def test_request_fixtures_are_the_shapes_cloudformation_sends() -> None:
    create, update = request("create"), request("update_policy_changed")
    delete, orphan = request("delete"), request("delete_after_failed_create")
    assert "PhysicalResourceId" not in create
    assert "OldResourceProperties" not in create
    assert update["PhysicalResourceId"] == POLICY_ID
    assert update["OldResourceProperties"]["PolicyName"] == POLICY
    assert update["ResourceProperties"]["PolicyName"] == POLICY_V2
    # The cleanup Delete after that update names the old id, exactly as delete.json does.
    assert delete["PhysicalResourceId"] == update["PhysicalResourceId"]
    assert GENERATED_ID.fullmatch(orphan["PhysicalResourceId"])
    for event in (create, update, delete, orphan):
        assert event["ResourceType"] == "Custom::ThingGroupPolicyAttachment"
        assert event["ResourceProperties"]["ServiceToken"] == event["ServiceToken"]
        assert urlsplit(event["ResponseURL"]).scheme == "https"
        assert "X-Amz-Signature=" in event["ResponseURL"]


# --- create -------------------------------------------------------------------------------------


def test_create_attaches_the_policy_to_the_group(iot: Any, sent: list[Sent]) -> None:
    event = request("create")
    assert invoke(event, sent) == answer(event, "SUCCESS", POLICY_ID)
    assert attached(iot) == [POLICY]
    assert iot.list_targets_for_policy(policyName=POLICY)["targets"] == [GROUP_ARN]


def test_create_sends_exactly_these_parameters(
    monkeypatch: pytest.MonkeyPatch, sent: list[Sent]
) -> None:
    client = boto3.client("iot", region_name=REGION)
    monkeypatch.setattr(quarantine_policy, "iot_client", lambda _region: client)
    event = request("create")
    with Stubber(client) as stubber:
        stubber.add_response("attach_policy", {}, {"policyName": POLICY, "target": GROUP_ARN})
        assert invoke(event, sent) == answer(event, "SUCCESS", POLICY_ID)
        stubber.assert_no_pending_responses()


def test_failed_create_then_its_rollback_delete(iot: Any, sent: list[Sent]) -> None:
    """The Delete after a failed Create names crhelper's made-up id, and must just succeed."""
    iot.delete_policy(policyName=POLICY)
    create = request("create")
    body = invoke(create, sent)
    physical_id = body["PhysicalResourceId"]
    assert GENERATED_ID.fullmatch(physical_id)
    assert body == answer(
        create,
        "FAILED",
        physical_id,
        f"iot:AttachPolicy of policy {POLICY!r} on thing group {GROUP_NAME!r} failed: "
        "ResourceNotFoundException: The specified resource does not exist",
    )
    assert attached(iot) == []

    rollback = request("delete")
    rollback["PhysicalResourceId"] = physical_id
    assert invoke(rollback, sent) == answer(rollback, "SUCCESS", physical_id)


# --- update -------------------------------------------------------------------------------------


def test_update_attaches_new_and_the_cleanup_delete_detaches_old(
    iot: Any, sent: list[Sent]
) -> None:
    invoke(request("create"), sent)

    update = request("update_policy_changed")
    assert invoke(update, sent) == answer(update, "SUCCESS", POLICY_V2_ID)
    # Both stay attached until the stack update has succeeded: Update never detaches.
    assert attached(iot) == [POLICY, POLICY_V2]

    # The id changed, so CloudFormation now sends Delete for the old one.
    cleanup = request("delete")
    assert cleanup["PhysicalResourceId"] == POLICY_ID
    assert invoke(cleanup, sent) == answer(cleanup, "SUCCESS", POLICY_ID)
    assert attached(iot) == [POLICY_V2]


def test_update_rolled_back_keeps_the_old_policy_throughout(iot: Any, sent: list[Sent]) -> None:
    """A later resource failed: CloudFormation updates back, then deletes the new id."""
    invoke(request("create"), sent)
    update = request("update_policy_changed")
    invoke(update, sent)

    back = request("update_policy_changed")
    back["RequestId"] = "9b8e7d6c-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
    back["PhysicalResourceId"] = POLICY_V2_ID
    back["ResourceProperties"], back["OldResourceProperties"] = (
        update["OldResourceProperties"],
        update["ResourceProperties"],
    )
    assert invoke(back, sent) == answer(back, "SUCCESS", POLICY_ID)
    assert attached(iot) == [POLICY, POLICY_V2]

    cleanup = request("delete")
    cleanup["PhysicalResourceId"] = POLICY_V2_ID
    cleanup["ResourceProperties"] = update["ResourceProperties"]
    assert invoke(cleanup, sent) == answer(cleanup, "SUCCESS", POLICY_V2_ID)
    assert attached(iot) == [POLICY]


def test_update_moving_to_another_group(iot: Any, sent: list[Sent]) -> None:
    other_arn = iot.create_thing_group(thingGroupName="iot-defender-splunk-isolated")[
        "thingGroupArn"
    ]
    invoke(request("create"), sent)
    update = request("update_policy_changed")
    update["ResourceProperties"] = {**update["OldResourceProperties"], "ThingGroupArn": other_arn}
    assert invoke(update, sent) == answer(update, "SUCCESS", f"{POLICY}|{other_arn}")

    invoke(request("delete"), sent)
    assert attached(iot) == []
    assert iot.list_targets_for_policy(policyName=POLICY)["targets"] == [other_arn]


def test_update_with_nothing_changed_keeps_the_id_and_reattaches(
    iot: Any, sent: list[Sent]
) -> None:
    """Same id, so no Delete follows; attaching again repairs a manual detach."""
    invoke(request("create"), sent)
    iot.detach_policy(policyName=POLICY, target=GROUP_ARN)
    update = request("update_policy_changed")
    update["ResourceProperties"] = update["OldResourceProperties"]
    assert invoke(update, sent) == answer(update, "SUCCESS", POLICY_ID)
    assert attached(iot) == [POLICY]


# --- delete -------------------------------------------------------------------------------------


def test_delete_detaches_so_the_stack_can_delete_the_policy(iot: Any, sent: list[Sent]) -> None:
    invoke(request("create"), sent)
    delete = request("delete")
    assert invoke(delete, sent) == answer(delete, "SUCCESS", POLICY_ID)
    assert attached(iot) == []
    iot.delete_policy(policyName=POLICY)  # DeleteConflictException while still attached


def _detach(iot: Any) -> None:
    iot.detach_policy(policyName=POLICY, target=GROUP_ARN)


def _delete_group(iot: Any) -> None:
    iot.delete_thing_group(thingGroupName=GROUP_NAME)


def _delete_policy(iot: Any) -> None:
    iot.detach_policy(policyName=POLICY, target=GROUP_ARN)
    iot.delete_policy(policyName=POLICY)


@pytest.mark.parametrize(
    "gone",
    [_detach, _delete_group, _delete_policy],
    ids=["already-detached", "group-deleted", "policy-deleted"],
)
def test_delete_of_something_already_gone_succeeds(
    iot: Any, sent: list[Sent], gone: Callable[[Any], None]
) -> None:
    invoke(request("create"), sent)
    gone(iot)
    delete = request("delete")
    assert invoke(delete, sent) == answer(delete, "SUCCESS", POLICY_ID)


def test_delete_after_failed_create_touches_nothing(
    sent: list[Sent], no_iot_calls: list[str]
) -> None:
    delete = request("delete_after_failed_create")
    assert invoke(delete, sent) == answer(delete, "SUCCESS", delete["PhysicalResourceId"])
    assert no_iot_calls == []


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("UnauthorizedException", "You are not authorized to perform this operation."),
        ("ThrottlingException", "Rate exceeded"),
    ],
)
def test_delete_fails_on_other_errors(
    monkeypatch: pytest.MonkeyPatch, sent: list[Sent], code: str, message: str
) -> None:
    """Only "already gone" is forgiven: anything else could leave the policy attached."""
    client = boto3.client("iot", region_name=REGION)
    monkeypatch.setattr(quarantine_policy, "iot_client", lambda _region: client)
    delete = request("delete")
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "detach_policy",
            service_error_code=code,
            service_message=message,
            http_status_code=400,
            expected_params={"policyName": POLICY, "target": GROUP_ARN},
        )
        body = invoke(delete, sent)
        stubber.assert_no_pending_responses()
    assert body == answer(
        delete,
        "FAILED",
        POLICY_ID,
        f"iot:DetachPolicy of policy {POLICY!r} on thing group {GROUP_NAME!r} failed: "
        f"{code}: {message}",
    )


def test_long_error_keeps_its_start_within_256_characters(
    monkeypatch: pytest.MonkeyPatch, sent: list[Sent]
) -> None:
    """crhelper would keep only the tail of a long Reason; the start says what failed."""
    client = boto3.client("iot", region_name=REGION)
    monkeypatch.setattr(quarantine_policy, "iot_client", lambda _region: client)
    with Stubber(client) as stubber:
        stubber.add_client_error("detach_policy", "InvalidRequestException", "x" * 500)
        body = invoke(request("delete"), sent)
    assert body["Status"] == "FAILED"
    assert len(body["Reason"]) == 256
    assert body["Reason"].startswith(f"iot:DetachPolicy of policy {POLICY!r} on thing group")
    assert body["Reason"].endswith("x...")


# --- bad properties -----------------------------------------------------------------------------

ARN_SHAPE = "arn:<partition>:iot:<region>:<account>:thinggroup/<name>"
POLICY_REQUIRED = "PolicyName is required: the name of the AWS IoT policy to attach"
GROUP_REQUIRED = f"ThingGroupArn is required: the ARN of the thing group, {ARN_SHAPE}"


def _bad_policy(value: str) -> str:
    return (
        "PolicyName must be an AWS IoT policy name "
        f"(1-128 characters from A-Z a-z 0-9 _+=,.@-), got {value}"
    )


def _bad_arn(value: str) -> str:
    return f"ThingGroupArn must be a thing group ARN, {ARN_SHAPE}; got {value}"


BAD_PROPERTIES = [
    pytest.param({"PolicyName": None}, POLICY_REQUIRED, id="no-policy"),
    pytest.param({"PolicyName": ""}, POLICY_REQUIRED, id="empty-policy"),
    pytest.param({"PolicyName": "deny all"}, _bad_policy("'deny all'"), id="policy-with-space"),
    pytest.param({"PolicyName": "a|b"}, _bad_policy("'a|b'"), id="policy-with-separator"),
    pytest.param({"PolicyName": "p" * 129}, _bad_policy(repr("p" * 129)[:97] + "..."), id="long"),
    pytest.param({"PolicyName": ["deny"]}, _bad_policy("['deny']"), id="policy-list"),
    pytest.param({"ThingGroupArn": None}, GROUP_REQUIRED, id="no-group"),
    pytest.param({"ThingGroupArn": ""}, GROUP_REQUIRED, id="empty-group"),
    pytest.param({"ThingGroupArn": GROUP_NAME}, _bad_arn(repr(GROUP_NAME)), id="group-name"),
    pytest.param(
        {"ThingGroupArn": GROUP_ARN.replace(":thinggroup/", ":thing/")},
        _bad_arn(repr(GROUP_ARN.replace(":thinggroup/", ":thing/"))),
        id="thing-arn",
    ),
    pytest.param(
        {"ThingGroupArn": GROUP_ARN + "\n"}, _bad_arn(repr(GROUP_ARN + "\n")), id="newline"
    ),
    pytest.param(
        {"ThingGroupArn": GROUP_ARN.replace(":iot:", ":iam:")},
        _bad_arn(repr(GROUP_ARN.replace(":iot:", ":iam:"))),
        id="other-service",
    ),
    pytest.param(
        {"ThingGroupArn": GROUP_ARN.replace("123456789012", "1234")},
        _bad_arn(repr(GROUP_ARN.replace("123456789012", "1234"))),
        id="short-account",
    ),
]


def _with(event: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``event`` with its ResourceProperties changed; a None value removes that property."""
    event = copy.deepcopy(event)
    properties = event["ResourceProperties"]
    for key, value in changes.items():
        if value is None:
            properties.pop(key)
        else:
            properties[key] = value
    return event


@pytest.mark.parametrize(("changes", "reason"), BAD_PROPERTIES)
def test_create_with_bad_properties_fails_before_any_call(
    sent: list[Sent], no_iot_calls: list[str], changes: dict[str, Any], reason: str
) -> None:
    create = _with(request("create"), changes)
    body = invoke(create, sent)
    assert GENERATED_ID.fullmatch(body["PhysicalResourceId"])
    assert body == answer(create, "FAILED", body["PhysicalResourceId"], reason)
    assert len(reason) <= 256
    assert no_iot_calls == []


@pytest.mark.parametrize(("changes", "reason"), BAD_PROPERTIES)
def test_update_with_bad_properties_fails_and_keeps_the_old_id(
    sent: list[Sent], no_iot_calls: list[str], changes: dict[str, Any], reason: str
) -> None:
    update = _with(request("update_policy_changed"), changes)
    assert invoke(update, sent) == answer(update, "FAILED", POLICY_ID, reason)
    assert no_iot_calls == []


def test_create_with_only_the_service_token_fails(
    sent: list[Sent], no_iot_calls: list[str]
) -> None:
    create = request("create")
    create["ResourceProperties"] = {"ServiceToken": create["ServiceToken"]}
    body = invoke(create, sent)
    assert body["Status"] == "FAILED"
    assert body["Reason"] == POLICY_REQUIRED
    assert no_iot_calls == []


# --- physical ids -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "group_arn",
    [
        GROUP_ARN,
        "arn:aws-cn:iot:cn-north-1:123456789012:thinggroup/quarantine",
        "arn:aws-us-gov:iot:us-gov-west-1:123456789012:thinggroup/Quarantine_2:x",
        "arn:aws-iso-b:iot:us-isob-east-1:123456789012:thinggroup/q",
    ],
)
def test_physical_id_round_trip(group_arn: str) -> None:
    attachment = Attachment.from_properties({"PolicyName": "p+=,.@-_1", "ThingGroupArn": group_arn})
    assert Attachment.from_physical_id(attachment.physical_id) == attachment
    assert attachment.region == group_arn.split(":")[3]


@pytest.mark.parametrize(
    "physical_id",
    [
        "",
        None,
        "iot-defender-splunk_QuarantinePolicyAttachment_7QK2M9XP",
        POLICY,
        f"{POLICY}|",
        f"|{GROUP_ARN}",
        f"{POLICY}|{GROUP_ARN}|extra",
        f"{POLICY}|{GROUP_ARN.replace(':thinggroup/', ':thing/')}",
    ],
)
def test_ids_not_made_here_name_nothing(physical_id: Any) -> None:
    assert Attachment.from_physical_id(physical_id) is None
