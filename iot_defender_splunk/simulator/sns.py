"""The SNS notification a Firehose subscription without raw delivery receives."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from iot_defender_splunk.simulator.stamps import REGION, iso_utc, stable_uuid

_SNS = f"https://sns.{REGION}.amazonaws.com"
_SIGNATURE_BYTES = 256  # an RSA-2048 signature


def notification(topic_arn: str, message: dict[str, Any], t: float) -> dict[str, Any]:
    """The notification SNS delivers for ``message`` published at ``t`` (epoch seconds).

    ``Message`` is the message's JSON text; the ids and signature are derived from the
    notification's content, so a simulation is reproducible.
    """
    stamp = f"{iso_utc(t)[:-1]}.000Z"
    body = json.dumps(message, separators=(",", ":"))
    message_id = stable_uuid(topic_arn, stamp, message)
    seed = hashlib.sha256(message_id.encode()).digest()
    signature = b"".join(
        hashlib.sha256(seed + bytes([n])).digest() for n in range(_SIGNATURE_BYTES // 32)
    )
    subscription = f"{topic_arn}:{stable_uuid('subscription', topic_arn)}"
    return {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": topic_arn,
        "Message": body,
        "Timestamp": stamp,
        "SignatureVersion": "1",
        "Signature": base64.b64encode(signature).decode("ascii"),
        "SigningCertURL": f"{_SNS}/SimpleNotificationService-{seed.hex()[:32]}.pem",
        "UnsubscribeURL": f"{_SNS}/?Action=Unsubscribe&SubscriptionArn={subscription}",
    }
