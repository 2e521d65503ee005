"""Fast path for audit completion notifications as SNS delivers them to the stream.

It takes a record only when its output provably equals the reference path's (transform.decoders
.sns, then .audit_notification); otherwise it returns None before changing any state. The proof:

- the record is a JSON object the reference router sends to the SNS decoder, and the SNS schema
  (the reference checker itself) accepts it;
- its Message decodes into the typed structures (shapes), which hold every constraint of the
  audit schema and forbid the extras it allows, and re-encodes to exactly its own bytes: so its
  keys come in the structures' order, none repeats, and every value is spelled as both orjson
  and msgspec write it;
- the task's start time is plausible (the reference path would re-stamp it and say so).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
import orjson
from msgspec import UNSET

from shared.catalog import audit_check
from transform.context import Invocation
from transform.decoders import rule_envelope
from transform.fast.shapes import (
    AuditNotification,
    CheckBody,
    CheckDetail,
    CheckEvent,
    CheckFields,
    TaskEvent,
    TaskFields,
)
from transform.sourcetypes import AUDIT_CHECK, AUDIT_TASK
from transform.timestamps import EARLIEST_PLAUSIBLE, epoch_seconds
from transform.validation import checker

_NOTIFICATION: Final = msgspec.json.Decoder(AuditNotification)
_ENCODER: Final = msgspec.json.Encoder()
_REFUSED: Final = (msgspec.ValidationError, msgspec.DecodeError, UnicodeEncodeError)


def transform(raw: bytes, invocation: Invocation) -> tuple[bytes, dict[str, int]] | None:
    """The record's HEC lines and their events per sourcetype; None when it is not for us."""
    if b"auditDetails" not in raw:  # a substring search spares other kinds the JSON parse
        return None
    sns = _sns_notification(raw)
    if sns is None:
        return None
    topic, message = sns
    notification = _notification(message)
    if notification is None:
        return None
    seconds = epoch_seconds(notification.task_start_time)
    if seconds is None or not EARLIEST_PLAUSIBLE <= seconds <= invocation.latest_plausible:
        return None
    events: list[TaskEvent | CheckEvent] = [_task_event(notification, seconds, topic, invocation)]
    events.extend(_check_events(notification, seconds, topic, invocation))
    counts = {AUDIT_TASK: 1}
    if notification.audit_details:
        counts[AUDIT_CHECK] = len(notification.audit_details)
    return _ENCODER.encode_lines(events), counts


def _sns_notification(raw: bytes) -> tuple[str, str] | None:
    """Topic and message of a record the reference router would hand to the SNS decoder.

    The envelope is checked by the reference path's own SNS checker, compiled on first use
    (as the reference path does) so the import stays cheap."""
    try:
        doc: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or rule_envelope.is_envelope(doc):
        return None
    if "TopicArn" not in doc or "Message" not in doc or checker("sns")(doc) is not None:
        return None
    return doc["TopicArn"], doc["Message"]


def _notification(message: str) -> AuditNotification | None:
    """The audit notification in an SNS Message, if the fast path can vouch for it."""
    try:
        notification = _NOTIFICATION.decode(message)
        if _ENCODER.encode(notification) != message.encode():
            return None
    except _REFUSED:
        return None
    return notification


def _task_event(
    notification: AuditNotification, seconds: float, topic: str, invocation: Invocation
) -> TaskEvent:
    fields = TaskFields(notification.task_id, notification.task_type, notification.task_status)
    index = invocation.index_by_sourcetype.get(AUDIT_TASK) or UNSET
    return TaskEvent(seconds, topic, AUDIT_TASK, index, notification, fields)


def _check_events(
    notification: AuditNotification, seconds: float, topic: str, invocation: Invocation
) -> list[CheckEvent]:
    index = invocation.index_by_sourcetype.get(AUDIT_CHECK) or UNSET
    events = []
    for detail in notification.audit_details:
        body = _check_body(detail, notification)
        fields = CheckFields(notification.task_id, body.current_check_name, detail.check_run_status)
        events.append(CheckEvent(seconds, topic, AUDIT_CHECK, index, body, fields))
    return events


def _check_body(detail: CheckDetail, task: AuditNotification) -> CheckBody:
    """The check's fields, the task's identity, and the catalogue's current name and severity
    (a 2020-era check name is renamed)."""
    check = audit_check(detail.check_name)
    return CheckBody(
        detail.check_name,
        detail.check_run_status,
        detail.non_compliant_resources_count,
        detail.total_resources_count,
        detail.suppressed_non_compliant_resources_count,
        detail.error_code,
        detail.message,
        task.task_id,
        task.task_type,
        task.task_status,
        task.task_start_time,
        task.account_id,
        task.scheduled_audit_name,
        check.name if check else detail.check_name,
        check.severity if check else UNSET,
    )
