"""Audits: notifications and findings pages, new findings, remediation and heartbeats."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from appbuild.datasets.cast import DOCK_CAMERA, GATEWAY, LOBBY_CAMERA, PUMP_18, PUMP_19, PUMP_21
from appbuild.datasets.story import Story, ago, dataset
from iot_defender_splunk.simulator.audit import (
    Check,
    Resource,
    account_settings,
    client_id,
    device_certificate,
    finding,
    findings_page,
    notification,
    notification_message,
    policy,
)
from iot_defender_splunk.simulator.stamps import DAY, HOUR, MINUTE, stable_id
from iot_defender_splunk.simulator.traffic import AUDIT_CHECKS  # the checks the fleet audits run

# A finding as the datasets describe it: the check that found it and the resource.
Finding = tuple[str, Resource]


def _audit_checks(findings: Sequence[Finding] = ()) -> list[Check]:
    """Each audited check's result, non-compliant with as many resources as it has findings."""
    counts = {name: sum(1 for check, _ in findings if check == name) for name in AUDIT_CHECKS}
    return [
        Check(name, "COMPLETED_NON_COMPLIANT", counts[name], 14)
        if counts[name]
        else Check(name, total=14)
        for name in AUDIT_CHECKS
    ]


def certificate(name: str, *clients: str) -> Resource:
    certificate_id = hashlib.sha256(name.encode()).hexdigest()
    return device_certificate(certificate_id, *clients)


def _add_audit(
    story: Story,
    start: float,
    findings: Sequence[Finding],
    suppressed: Sequence[Finding] = (),
    *,
    name: str = "daily-fleet-audit",
) -> None:
    """One scheduled audit: its completion notification and, if it found any, its findings page."""
    task = stable_id("audit", start)
    checks = _audit_checks([*findings, *suppressed])
    message = notification(task, start, checks, audit_name=name)
    story.add(start + 20 * MINUTE, notification_message(message, start + 20 * MINUTE))
    items = [finding(task, start, check, resource) for check, resource in findings]
    items += [finding(task, start, *item, suppressed=True) for item in suppressed]
    if items:
        story.add(start + 30 * MINUTE, findings_page(items))


@dataset
def audit() -> Story:
    """Two daily audits with their findings pages; the latest finds new problems.

    Yesterday's audit (26 h ago) found a certificate shared by pump-0018 and a bench copy, an
    overly permissive legacy policy and an expiring certificate. Today's (2 h ago) finds those
    again plus a second shared certificate, gw-berlin-03's client id used by several devices
    and account logging switched off; a suppressed policy finding is left out of every count.
    """
    recurring: list[Finding] = [
        (
            "DEVICE_CERTIFICATE_SHARED_CHECK",
            certificate("cert-a", PUMP_18.name, "pump-0018-bench"),
        ),
        ("IOT_POLICY_OVERLY_PERMISSIVE_CHECK", policy("legacy-device-policy", "4")),
        ("DEVICE_CERTIFICATE_EXPIRING_CHECK", certificate("cert-c")),
    ]
    new: list[Finding] = [
        (
            "DEVICE_CERTIFICATE_SHARED_CHECK",
            certificate("cert-b", LOBBY_CAMERA.name, DOCK_CAMERA.name, "cam-test"),
        ),
        ("CONFLICTING_CLIENT_IDS_CHECK", client_id(GATEWAY.name)),
        ("LOGGING_DISABLED_CHECK", account_settings()),
    ]
    suppressed: Finding = (
        "IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK",
        policy("camera-telemetry-policy", "2"),
    )
    story = Story()
    _add_audit(story, ago(26 * HOUR), recurring)
    _add_audit(story, ago(2 * HOUR), recurring + new, [suppressed])
    return story


@dataset
def audit_first_finding() -> Story:
    """Three clean daily audits, then the account's first findings ever, in today's audit.

    Audits 74, 50 and 26 hours ago found nothing. Today's (2 h ago) finds account logging
    switched off and a certificate shared by pump-0019 and a copy on an unknown client: new
    findings with a history of completed audits to compare them with, but no earlier finding.
    """
    story = Story()
    for hours in (74, 50, 26):
        _add_audit(story, ago(hours * HOUR), [])
    findings: list[Finding] = [
        ("LOGGING_DISABLED_CHECK", account_settings()),
        (
            "DEVICE_CERTIFICATE_SHARED_CHECK",
            certificate("cert-d", PUMP_19.name, "pump-0019-clone"),
        ),
    ]
    _add_audit(story, ago(2 * HOUR), findings)
    return story


@dataset
def audit_check_remediated() -> Story:
    """A shared certificate found yesterday is fixed and an on-demand audit shows it compliant.

    Last night's scheduled audit (20 h ago) found a certificate shared by pump-0021 and a clone,
    and gw-berlin-03's client id used by several devices. The certificate was replaced, and an
    on-demand audit 3 hours ago ran both checks again: the certificate check completed
    compliant; the client id check failed for lack of permissions, which says nothing about
    the client id, so yesterday's result stands.
    """
    story = Story()
    findings: list[Finding] = [
        (
            "DEVICE_CERTIFICATE_SHARED_CHECK",
            certificate("cert-e", PUMP_21.name, "pump-0021-clone"),
        ),
        ("CONFLICTING_CLIENT_IDS_CHECK", client_id(GATEWAY.name)),
    ]
    _add_audit(story, ago(20 * HOUR), findings)
    start = ago(3 * HOUR)
    checks = [
        Check("DEVICE_CERTIFICATE_SHARED_CHECK", total=14),
        Check(
            "CONFLICTING_CLIENT_IDS_CHECK", "FAILED", total=0, error_code="INSUFFICIENT_PERMISSIONS"
        ),
    ]
    message = notification(
        stable_id("audit", start),
        start,
        checks,
        task_type="ON_DEMAND_AUDIT_TASK",
        audit_name=None,
    )
    story.add(start + 5 * MINUTE, notification_message(message, start + 5 * MINUTE))
    return story


@dataset
def audit_heartbeat() -> Story:
    """The last completed audit is 30 h old; one since failed and an older one was canceled."""
    story = Story()
    completed, failed, canceled = ago(30 * HOUR), ago(5 * HOUR), ago(50 * HOUR)
    checks = _audit_checks()
    story.add(
        completed + 15 * MINUTE,
        notification_message(
            notification(stable_id("audit", completed), completed, checks),
            completed + 15 * MINUTE,
        ),
    )
    failing = [
        Check(check.name, "FAILED", total=0, error_code="INSUFFICIENT_PERMISSIONS")
        if check.name.startswith("DEVICE_CERTIFICATE")
        else check
        for check in checks
    ]
    story.add(
        failed + 15 * MINUTE,
        notification_message(
            notification(stable_id("audit", failed), failed, failing, status="FAILED"),
            failed + 15 * MINUTE,
        ),
    )
    partial = [Check(check.name, "CANCELED", total=0) for check in checks[:3]] + checks[3:]
    story.add(
        canceled + 10 * MINUTE,
        notification_message(
            notification(
                stable_id("audit", canceled),
                canceled,
                partial,
                status="CANCELED",
                task_type="ON_DEMAND_AUDIT_TASK",
                audit_name=None,
            ),
            canceled + 10 * MINUTE,
            via_sns=False,
        ),
    )
    return story


@dataset
def audit_weekly() -> Story:
    """A clean weekly audit every Friday at 03:00 UTC; the last one completed three days ago."""
    story = Story()
    for days in (17, 10, 3):
        _add_audit(story, ago(days * DAY - HOUR), [], name="weekly-fleet-audit")
    return story


@dataset
def audit_monthly() -> Story:
    """A clean monthly audit on the 3rd at 03:00 UTC; the last one completed 20 days ago."""
    story = Story()
    for days in (51, 20):
        _add_audit(story, ago(days * DAY - HOUR), [], name="monthly-fleet-audit")
    return story
