"""Device Defender Audit messages: the completion notification (SNS) and its findings, as the
audit-findings collector puts ListAuditFindings pages into Firehose."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from iot_defender_splunk.simulator.delivery import Message
from iot_defender_splunk.simulator.sns import notification as sns_notification
from iot_defender_splunk.simulator.stamps import ACCOUNT, REGION, compact, epoch_ms, stable_uuid
from shared.firehose import encode

AUDIT_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:iot-defender-audit"
# AWS's severity of each check the simulations find (the transform keeps the finding's own).
SEVERITY = {
    "DEVICE_CERTIFICATE_SHARED_CHECK": "CRITICAL",
    "IOT_POLICY_OVERLY_PERMISSIVE_CHECK": "CRITICAL",
    "CONFLICTING_CLIENT_IDS_CHECK": "HIGH",
    "DEVICE_CERTIFICATE_EXPIRING_CHECK": "MEDIUM",
    "IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK": "MEDIUM",
    "LOGGING_DISABLED_CHECK": "LOW",
}
# Reason code and text of each check's findings, as AWS words them.
REASON = {
    "DEVICE_CERTIFICATE_SHARED_CHECK": (
        "CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES",
        "Certificate shared by one or more devices.",
    ),
    "IOT_POLICY_OVERLY_PERMISSIVE_CHECK": (
        "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS",
        "Policy allows broad access to IoT data plane actions: [iot:Connect, iot:Publish].",
    ),
    "CONFLICTING_CLIENT_IDS_CHECK": (
        "DUPLICATE_CLIENT_ID_ACROSS_CONNECTIONS",
        "Multiple devices are connecting with the same client ID.",
    ),
    "DEVICE_CERTIFICATE_EXPIRING_CHECK": (
        "CERTIFICATE_APPROACHING_EXPIRATION",
        "Certificate is expiring within 30 days.",
    ),
    "IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK": (
        "POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT",
        "Policy contains MQTT wildcards in a Deny statement that may not block the intended "
        "topics.",
    ),
    "LOGGING_DISABLED_CHECK": ("LOGGING_DISABLED", "Logging is disabled for the account."),
}


@dataclass(frozen=True)
class Check:
    """One check's result in an audit notification (an ``auditDetails`` item)."""

    name: str
    status: str = "COMPLETED_COMPLIANT"
    noncompliant: int = 0
    total: int = 1
    error_code: str | None = None
    suppressed: int | None = None

    def detail(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "checkName": self.name,
            "checkRunStatus": self.status,
            "nonCompliantResourcesCount": self.noncompliant,
            "totalResourcesCount": self.total,
        }
        if self.suppressed is not None:
            item["suppressedNonCompliantResourcesCount"] = self.suppressed
        if self.error_code:
            item["errorCode"] = self.error_code
            item["message"] = "The audit role is not authorized to read the resources."
        return item


def notification(
    task_id: str,
    t: float,
    checks: Sequence[Check],
    *,
    status: str = "COMPLETED",
    task_type: str = "SCHEDULED_AUDIT_TASK",
    audit_name: str | None = "daily-fleet-audit",
) -> dict[str, Any]:
    """An audit completion notification (taskStartTime ``t``), as Audit publishes it."""
    statuses = [check.status for check in checks]
    message: dict[str, Any] = {
        "accountId": ACCOUNT,
        "taskId": task_id,
        "taskStatus": status,
        "taskType": task_type,
    }
    if audit_name:
        message["scheduledAuditName"] = audit_name
    message |= {
        "failedChecksCount": statuses.count("FAILED"),
        "canceledChecksCount": statuses.count("CANCELED"),
        "nonCompliantChecksCount": statuses.count("COMPLETED_NON_COMPLIANT"),
        "compliantChecksCount": statuses.count("COMPLETED_COMPLIANT"),
        "totalChecksCount": len(checks),
        "taskStartTime": epoch_ms(t),
        "auditDetails": [check.detail() for check in checks],
    }
    return message


def notification_message(message: dict[str, Any], sent: float, *, via_sns: bool = True) -> Message:
    """An audit notification as Firehose receives it: SNS-wrapped from the audit topic, or raw."""
    if via_sns:
        return Message("audit_notification", compact(sns_notification(AUDIT_TOPIC, message, sent)))
    return Message("audit_notification", compact(message))


@dataclass(frozen=True)
class Resource:
    """A non-compliant resource of a finding, and the client ids related to it."""

    resource_type: str
    identifier: dict[str, Any]
    related_clients: tuple[str, ...] = ()


def device_certificate(certificate_id: str, *clients: str) -> Resource:
    """A device certificate (64 hex digits) and the clients that use it."""
    return Resource("DEVICE_CERTIFICATE", {"deviceCertificateId": certificate_id}, clients)


def policy(name: str, version: str) -> Resource:
    identifier = {"policyVersionIdentifier": {"policyName": name, "policyVersionId": version}}
    return Resource("IOT_POLICY", identifier)


def client_id(name: str) -> Resource:
    return Resource("CLIENT_ID", {"clientId": name})


def account_settings(account: str = ACCOUNT) -> Resource:
    return Resource("ACCOUNT_SETTINGS", {"account": account})


def finding(
    task_id: str, task_start: float, check: str, resource: Resource, *, suppressed: bool = False
) -> dict[str, Any]:
    """One ListAuditFindings item (times in epoch seconds, as the API returns them)."""
    code, reason = REASON[check]
    item: dict[str, Any] = {
        "findingId": stable_uuid(task_id, check, resource.identifier),
        "taskId": task_id,
        "checkName": check,
        "taskStartTime": round(task_start, 3),
        "findingTime": round(task_start + 2.5, 3),
        "severity": SEVERITY[check],
        "nonCompliantResource": {
            "resourceType": resource.resource_type,
            "resourceIdentifier": resource.identifier,
        },
    }
    if resource.related_clients:
        item["relatedResources"] = [
            {"resourceType": "CLIENT_ID", "resourceIdentifier": {"clientId": client}}
            for client in resource.related_clients
        ]
    item |= {
        "reasonForNonCompliance": reason,
        "reasonForNonComplianceCode": code,
        "isSuppressed": suppressed,
    }
    return item


def findings_page(findings: list[dict[str, Any]]) -> Message:
    """What the audit-findings collector puts into Firehose: one ListAuditFindings page."""
    return Message("audit_finding", compact({"findings": findings}))


def finding_record(finding_item: dict[str, Any]) -> Message:
    """One finding as the audit-findings collector (and ``backfill-audit``) puts it into
    Firehose: a record per finding, encoded by the same ``shared.firehose.encode``."""
    return Message("audit_finding", encode(finding_item))
