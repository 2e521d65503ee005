"""Audit completion notifications: one task event plus one check event per ``auditDetails`` item.

The check events repeat the task's identity so each can be searched alone, and carry the
current check name and severity even when AWS sent a 2020-era check name.
"""

from __future__ import annotations

from typing import Any

from shared.catalog import audit_check
from transform.context import RecordContext
from transform.decoders.common import valid_items
from transform.sourcetypes import AUDIT_CHECK, AUDIT_TASK

KIND = "audit_notification"
_TASK_KEYS = (
    "taskId",
    "taskType",
    "taskStatus",
    "taskStartTime",
    "accountId",
    "scheduledAuditName",
)


def decode(doc: dict[str, Any], ctx: RecordContext, *, source: str | None = None) -> None:
    details = valid_items(ctx, doc, kind=KIND, key="auditDetails", item="checkDetail")
    if details is None:
        return
    task = {key: doc[key] for key in _TASK_KEYS if key in doc}
    when = doc["taskStartTime"]
    task_fields = {
        "task_id": doc["taskId"],
        "task_type": doc["taskType"],
        "task_status": doc["taskStatus"],
    }
    ctx.emit(AUDIT_TASK, doc, when=when, source=source, fields=task_fields)
    emit_check = ctx.emitter(AUDIT_CHECK, source)
    for detail in details:
        event = {**detail, **task}
        check = audit_check(detail["checkName"])
        event["check_name"] = check.name if check else detail["checkName"]
        if check:
            event["severity"] = check.severity
        fields = {
            "task_id": doc["taskId"],
            "check_name": event["check_name"],
            "check_run_status": detail["checkRunStatus"],
        }
        emit_check(event, when=when, fields=fields)
