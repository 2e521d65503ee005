"""Audit findings (ListAuditFindings items, alone or as a page): one event per finding."""

from __future__ import annotations

from typing import Any

from shared.catalog import audit_check
from transform.context import RecordContext
from transform.decoders.common import check_document, valid_items
from transform.sourcetypes import AUDIT_FINDING

KIND = "audit_finding"


def decode(doc: dict[str, Any], ctx: RecordContext, *, source: str | None = None) -> None:
    if check_document(ctx, doc, KIND):
        _emit(doc, ctx, source)


def decode_page(doc: dict[str, Any], ctx: RecordContext, *, source: str | None = None) -> None:
    findings = valid_items(
        ctx, doc, kind=KIND, key="findings", item="finding", envelope="page", whole="fullPage"
    )
    for finding in findings or ():
        _emit(finding, ctx, source)


def _emit(finding: dict[str, Any], ctx: RecordContext, source: str | None) -> None:
    resource = finding["nonCompliantResource"]
    check = audit_check(finding["checkName"])
    finding["check_name"] = check.name if check else finding["checkName"]
    finding["resource_type"] = resource["resourceType"]
    resource_id = _resource_id(resource["resourceIdentifier"])
    if resource_id:
        finding["resource_id"] = resource_id
    fields = {
        "check_name": finding["check_name"],
        "severity": finding["severity"],
        "resource_type": resource["resourceType"],
    }
    if "taskId" in finding:
        fields["task_id"] = finding["taskId"]
    when = finding.get("findingTime", finding.get("taskStartTime"))
    ctx.emit(AUDIT_FINDING, finding, when=when, source=source, fields=fields)


def _resource_id(identifier: dict[str, Any]) -> str | None:
    """One searchable id for the resource: the identifier's value, or its parts joined by ':'."""
    for value in identifier.values():
        if isinstance(value, str) and value:
            return value
        if isinstance(value, dict) and value:
            return ":".join(str(part) for part in value.values())
    return None
