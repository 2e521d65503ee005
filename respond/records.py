"""The audit trail: one ``aws:iot:response`` record per target of every executed change.

The records go into the pipeline's own delivery stream (docs/events.md §6.2 is their
contract), through the same retrying PutRecordBatch the collectors use, so Splunk sees every
action the responder took next to the detections that asked for it.
"""

from __future__ import annotations

from typing import Any

import orjson

from respond.actions import ERROR, NOOP, OK, REFUSED, Target
from respond.requests import Request

RECORD_TYPE = "aws:iot:response"
_STATUS = {OK: "SUCCEEDED", ERROR: "FAILED", NOOP: "SKIPPED", REFUSED: "SKIPPED"}


def response_records(
    request: Request,
    response_id: str,
    targets: list[Target],
    *,
    requested_at: float,
    completed_at: float,
) -> list[bytes]:
    """The records of one executed request; none for a dry run or a read."""
    if request.dry_run or not request.changes:
        return []
    return [
        orjson.dumps(_record(request, response_id, target, requested_at, completed_at))
        for target in targets
    ]


def _record(
    request: Request, response_id: str, target: Target, requested_at: float, completed_at: float
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "recordType": RECORD_TYPE,
        "schemaVersion": 1,
        "actionId": response_id,
        "action": request.action,
        "status": _STATUS[target.status],
        "requestedAt": int(requested_at * 1000),
        "completedAt": int(completed_at * 1000),
        "requestedBy": request.requested_by[:256],
        "reason": request.reason[:2048],
        "target": _target(request, target),
        "details": {
            "requestId": request.request_id,
            "message": target.message,
            **({"before": target.before} if target.before is not None else {}),
            **({"after": target.after} if target.after is not None else {}),
        },
    }
    if target.error:
        record["error"] = dict(target.error)
    return record


def _target(request: Request, target: Target) -> dict[str, Any]:
    """The record's target: the thing (with the group or attribute value of a fleet action),
    the certificate, or the audit target of a mitigation task."""
    shown: dict[str, Any] = {}
    if "thing_name" in target.key:
        shown["thingName"] = target.key["thing_name"]
    if "certificate_id" in target.key:
        shown["certificateId"] = target.key["certificate_id"]
    if "thing_group" in request.params:
        shown["thingGroupName"] = request["thing_group"]
    if request.params.get("attribute") == "firmware_version":
        shown["firmwareVersion"] = request["value"]
    if request.action == "remediate_audit_finding":
        shown["auditTarget"] = dict(target.key)
    elif not shown:  # a fleet request refused before any thing was named
        shown["scope"] = dict(target.key)
    return shown
