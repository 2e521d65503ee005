"""``Custom::ThingGroupPolicyAttachment``: attach an AWS IoT policy to a thing group.

CloudFormation cannot do this itself (``AWS::IoT::PolicyPrincipalAttachment`` takes
certificates and Cognito identities only), and the quarantine depends on it: the stack's
deny-everything policy sits on the quarantine thing group, so any thing moved into the group
loses its MQTT permissions, because an explicit Deny beats every Allow.

Properties: ``PolicyName`` (the IoT policy) and ``ThingGroupArn`` (the target group).
The physical id is ``"<PolicyName>|<ThingGroupArn>"``; neither part can contain ``|``.

How each request is handled, and why:

* Create attaches the policy and returns the physical id.
* Update attaches the new pair and returns its physical id, and never detaches the old pair
  itself. The physical id is made of both properties, so whenever either one changes the id
  changes too. After the whole stack update has succeeded, CloudFormation sends Delete for
  the old id (in UPDATE_COMPLETE_CLEANUP_IN_PROGRESS), and that Delete is what detaches the
  old pair. Detaching here as well would detach it twice. It would also take the old policy
  off before the stack is known to be good: if a later resource failed, the rollback (an
  Update back to the old properties, then Delete of the new id) would have to put it back.
  Left alone, the old pair stays attached the whole time and a rollback changes nothing for
  it. An Update that leaves both properties the same keeps the id, so no Delete follows. It
  attaches again, which repairs a manual detach, because AttachPolicy is idempotent.
* Delete detaches whatever the physical id names. ResourceNotFoundException (policy, group or
  attachment already gone) counts as success, so stack deletion never gets stuck. A physical
  id that is not ours is the one crhelper made up for a Create that failed, so nothing was
  attached, and that Delete succeeds without touching AWS.

Declare each (policy, group) pair in one resource only: two resources with the same pair
share a physical id, and deleting either one detaches the policy for both.

crhelper sends the response to CloudFormation. This module registers no poll handlers, so
``polling_interval`` is unused and no EventBridge rule is ever created.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from crhelper import CfnResource

from shared.aws import IotClient, error_code
from shared.names import THING_NAME_PATTERN

logger = logging.getLogger(__name__)

RESOURCE_TYPE = "Custom::ThingGroupPolicyAttachment"
SEPARATOR = "|"

# AWS IoT's own constraints: a policyName is 1-128 of [\w+=,.@-] and a thingGroupName is
# 1-128 of [a-zA-Z0-9:_-]. With ASCII-only matching, "|" can appear in neither, which makes
# it a safe separator for the physical id.
POLICY_NAME = re.compile(r"[\w+=,.@-]{1,128}", re.ASCII)
THING_GROUP_ARN = re.compile(
    r"arn:(?P<partition>aws(?:-[a-z]+)*)"
    r":iot:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)"
    r":(?P<account>\d{12})"
    rf":thinggroup/(?P<name>{THING_NAME_PATTERN})",
    re.ASCII,
)
ARN_SHAPE = "arn:<partition>:iot:<region>:<account>:thinggroup/<name>"

# CloudFormation shows at most 256 characters of Reason, and crhelper cuts longer text down
# to its tail, so messages are shortened here, where the start of the text can be kept.
MAX_REASON = 256

# Before it answers a Delete, crhelper waits this long so the invocation's logs reach
# CloudWatch before the stack can delete the function and its log group. Its default of
# 120 s would add two minutes to every stack deletion and update cleanup. A few seconds is
# enough. crhelper skips it unless more than 15 s plus this remain before the timeout.
SLEEP_ON_DELETE_SECONDS = 5

# Worst case with every attempt timing out: 4 x (3 s connect + 5 s read) plus backoff, about
# 40 s, inside the template's 60 s function timeout. If that runs out anyway, crhelper's timer
# answers FAILED 0.5 s before it, so CloudFormation never waits an hour for a response.
IOT_CONFIG = Config(
    connect_timeout=3,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 4},
)


class LambdaContextLike(Protocol):
    """The part of the Lambda context crhelper uses: it times out early to still answer."""

    def get_remaining_time_in_millis(self) -> int: ...


class InvalidPropertiesError(ValueError):
    """The resource's properties are unusable. The message becomes the FAILED Reason."""


class AttachmentError(RuntimeError):
    """An IoT call failed, described in a form that fits in CloudFormation's Reason."""


def _shorten(text: str, limit: int = MAX_REASON) -> str:
    """Keep the start of a message, which is the part that says what failed."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shown(value: object) -> str:
    """A user-supplied value as quoted in error messages, kept short."""
    return _shorten(repr(value), 100)


@dataclass(frozen=True)
class Attachment:
    """One policy on one thing group: what a resource, and its physical id, stand for."""

    policy_name: str
    thing_group_arn: str

    @property
    def physical_id(self) -> str:
        """Made of both properties, so changing either one changes the id."""
        return f"{self.policy_name}{SEPARATOR}{self.thing_group_arn}"

    @property
    def region(self) -> str:
        """The group's region, where the IoT calls must go (already validated)."""
        return self.thing_group_arn.split(":", 4)[3]

    @property
    def thing_group_name(self) -> str:
        """The group's name, for messages."""
        return self.thing_group_arn.split("/", 1)[1]

    @classmethod
    def from_properties(cls, properties: Any) -> Attachment:
        """Validate ``ResourceProperties``, so that bad input fails before any API call."""
        if not isinstance(properties, dict):
            raise InvalidPropertiesError(
                f"{RESOURCE_TYPE} needs Properties PolicyName and ThingGroupArn"
            )
        policy = properties.get("PolicyName")
        group_arn = properties.get("ThingGroupArn")
        if policy is None or policy == "":
            raise InvalidPropertiesError(
                "PolicyName is required: the name of the AWS IoT policy to attach"
            )
        if not isinstance(policy, str) or not POLICY_NAME.fullmatch(policy):
            raise InvalidPropertiesError(
                "PolicyName must be an AWS IoT policy name "
                f"(1-128 characters from A-Z a-z 0-9 _+=,.@-), got {_shown(policy)}"
            )
        if group_arn is None or group_arn == "":
            raise InvalidPropertiesError(
                f"ThingGroupArn is required: the ARN of the thing group, {ARN_SHAPE}"
            )
        if not isinstance(group_arn, str) or not THING_GROUP_ARN.fullmatch(group_arn):
            raise InvalidPropertiesError(
                f"ThingGroupArn must be a thing group ARN, {ARN_SHAPE}; got {_shown(group_arn)}"
            )
        return cls(policy, group_arn)

    @classmethod
    def from_physical_id(cls, physical_id: Any) -> Attachment | None:
        """The attachment a physical id names, or None when the id was not made here."""
        if not isinstance(physical_id, str):
            return None
        policy, separator, group_arn = physical_id.partition(SEPARATOR)
        if separator and POLICY_NAME.fullmatch(policy) and THING_GROUP_ARN.fullmatch(group_arn):
            return cls(policy, group_arn)
        return None


@cache
def iot_client(region: str) -> IotClient:
    """One client per region and container, created on first use."""
    client: IotClient = boto3.client("iot", region_name=region, config=IOT_CONFIG)
    return client


def _describe(action: str, attachment: Attachment, error: ClientError) -> str:
    message = error.response.get("Error", {}).get("Message", "")
    return _shorten(
        f"iot:{action} of policy {attachment.policy_name!r} on thing group "
        f"{attachment.thing_group_name!r} failed: {error_code(error)}: {message}"
    )


def attach(attachment: Attachment) -> None:
    """Attach the policy to the group. An existing attachment is left as it is."""
    try:
        iot_client(attachment.region).attach_policy(
            policyName=attachment.policy_name, target=attachment.thing_group_arn
        )
    except ClientError as error:
        raise AttachmentError(_describe("AttachPolicy", attachment, error)) from error
    logger.info(
        "Attached IoT policy %s to thing group %s",
        attachment.policy_name,
        attachment.thing_group_arn,
    )


def detach(attachment: Attachment) -> None:
    """Detach the policy from the group. Something already gone counts as detached."""
    try:
        iot_client(attachment.region).detach_policy(
            policyName=attachment.policy_name, target=attachment.thing_group_arn
        )
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise AttachmentError(_describe("DetachPolicy", attachment, error)) from error
        logger.info(
            "IoT policy %s on thing group %s is already gone (%s); nothing to detach",
            attachment.policy_name,
            attachment.thing_group_arn,
            error.response.get("Error", {}).get("Message", ""),
        )
        return
    logger.info(
        "Detached IoT policy %s from thing group %s",
        attachment.policy_name,
        attachment.thing_group_arn,
    )


def on_create(event: dict[str, Any], _context: LambdaContextLike) -> str:
    """Attach the policy. The returned id names exactly what was attached."""
    attachment = Attachment.from_properties(event.get("ResourceProperties"))
    attach(attachment)
    return attachment.physical_id


def on_update(event: dict[str, Any], _context: LambdaContextLike) -> str:
    """Attach the new pair. The old pair is left for the Delete that CloudFormation sends.

    If either property changed, the returned id differs from ``event["PhysicalResourceId"]``,
    so CloudFormation sends Delete for the old id once the update succeeds. If nothing
    changed, the id is the same, no Delete follows, and the attachment must stay.
    """
    attachment = Attachment.from_properties(event.get("ResourceProperties"))
    attach(attachment)
    if attachment.physical_id != event.get("PhysicalResourceId"):
        logger.info(
            "Physical id changed from %s; CloudFormation detaches the old pair with a Delete",
            event.get("PhysicalResourceId"),
        )
    return attachment.physical_id


def on_delete(event: dict[str, Any], _context: LambdaContextLike) -> str:
    """Detach what the physical id names, which may be the previous pair after an update."""
    physical_id = event.get("PhysicalResourceId", "")
    attachment = Attachment.from_physical_id(physical_id)
    if attachment is None:
        logger.info(
            "Physical id %r was not made by this resource (its Create failed); nothing to detach",
            physical_id,
        )
    else:
        detach(attachment)
    return str(physical_id)


@cache
def _helper() -> CfnResource:
    """Built on first use, not at import: crhelper makes boto3 clients, which need a region.

    Lambda always sets AWS_REGION. Without a region, crhelper records the error and answers
    every request FAILED, so that CloudFormation does not wait for a response that never comes.
    """
    helper = CfnResource(
        json_logging=False,
        # DEBUG would log the whole request, including its presigned ResponseURL.
        log_level="INFO",
        boto_level="ERROR",
        sleep_on_delete=SLEEP_ON_DELETE_SECONDS,
    )
    helper.create(on_create)
    helper.update(on_update)
    helper.delete(on_delete)
    return helper


def lambda_handler(event: dict[str, Any], context: LambdaContextLike) -> None:
    """Entry point. crhelper runs the handler, sends the response and traps every error."""
    _helper()(event, context)
