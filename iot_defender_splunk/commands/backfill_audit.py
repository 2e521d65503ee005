"""Put past Device Defender audits into the delivery stream, so Splunk has audit history from
before the stack was deployed.

For every audit task that started in --since..--until (ListAuditTasks: scheduled and on-demand
audits), a finished task (COMPLETED, FAILED or CANCELED) becomes the record its completion
notification would have been (DescribeAuditTask: one task event and one check event per check
in Splunk), followed, when a check was non-compliant, by its findings (ListAuditFindings,
suppressed ones included) exactly as the stack's findings collector puts them. Tasks still in
progress are skipped and counted: the stack collects them when they finish.

AWS keeps 90 days of audit history, so --since may be at most 90 days ago (default: 89 days,
to stay inside it). The records go through the transform like live ones. A task put twice (a
rerun, or a range overlapping what the stack already collected) is indexed twice: end --until
at the deployment time, or search with `dedup taskId` / `dedup findingId`. --dry-run lists and
counts, and puts nothing.
"""

from __future__ import annotations

import argparse
import datetime
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from iot_defender_splunk import cli
from iot_defender_splunk.aws import CONFIG, add_aws_arguments, describe_error, session
from iot_defender_splunk.commands.replay import utc_time
from iot_defender_splunk.console import progress
from shared.audit import FINISHED_STATUSES, finding_pages
from shared.firehose import FirehoseClient, encode, put_records

NAME = "backfill-audit"
SUMMARY = "put past Device Defender audits (tasks, checks, findings) into the delivery stream"

RETENTION = datetime.timedelta(days=90)
DEFAULT_SPAN = datetime.timedelta(days=89)
# ListAuditTasks accepts maxResults 1..250.
TASKS_PAGE_SIZE = 250
_NON_COMPLIANT = "COMPLETED_NON_COMPLIANT"
# Exact integer milliseconds (AWS's precision), where float seconds * 1000 can be off by one.
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_MILLISECOND = datetime.timedelta(milliseconds=1)
# Notification count field <- DescribeAuditTask taskStatistics field.
_CHECK_COUNTS = {
    "failedChecksCount": "failedChecks",
    "canceledChecksCount": "canceledChecks",
    "nonCompliantChecksCount": "nonCompliantChecks",
    "compliantChecksCount": "compliantChecks",
    "totalChecksCount": "totalChecks",
}


def utc_now() -> datetime.datetime:
    """Now, the reference of AWS's 90-day retention (tests move it)."""
    return datetime.datetime.now(datetime.UTC)


def notification(task_id: str, described: Mapping[str, Any], account_id: str) -> dict[str, Any]:
    """A DescribeAuditTask answer as the completion notification SNS carries for that task.

    The API gives the checks as a map and the counts as taskStatistics; the notification, which
    the transform decodes, has them as an auditDetails list and *ChecksCount fields, and its
    taskStartTime in epoch milliseconds. API fields the notification lacks are kept.
    """
    statistics = described.get("taskStatistics", {})
    record: dict[str, Any] = {
        "accountId": account_id,
        "taskId": task_id,
        "taskStatus": described["taskStatus"],
        "taskType": described["taskType"],
    }
    if described.get("scheduledAuditName"):
        record["scheduledAuditName"] = described["scheduledAuditName"]
    record.update(
        {field: statistics[api] for field, api in _CHECK_COUNTS.items() if api in statistics}
    )
    record["taskStartTime"] = (described["taskStartTime"] - _EPOCH) // _MILLISECOND
    record["auditDetails"] = [
        {"checkName": name, **detail}
        for name, detail in sorted(described.get("auditDetails", {}).items())
    ]
    return record


def has_findings(record: Mapping[str, Any]) -> bool:
    """Whether the task's findings are worth listing: finished with a non-compliant check."""
    return record["taskStatus"] in FINISHED_STATUSES and any(
        detail.get("checkRunStatus") == _NON_COMPLIANT for detail in record["auditDetails"]
    )


@dataclass
class Tally:
    tasks: int = 0
    in_progress: int = 0
    checks: int = 0
    findings: int = 0

    def line(self, stream: str | None, dry_run: bool) -> str:
        records = self.tasks + self.findings
        verb = "would put" if dry_run else "put"
        return (
            f"{self.tasks} audit tasks ({self.checks} checks), {self.findings} findings: "
            f"{verb} {records} records into {stream or 'the stream'}; "
            f"{self.in_progress} tasks still in progress skipped"
        )


@dataclass
class _Backfill:
    iot: Any
    firehose: FirehoseClient | None  # None on a dry run
    stream: str  # "" on a dry run
    account_id: str
    tally: Tally

    def task(self, task_id: str) -> None:
        described = self.iot.describe_audit_task(taskId=task_id)
        record = notification(task_id, described, self.account_id)
        self._put(task_id, [record])
        self.tally.tasks += 1
        self.tally.checks += len(record["auditDetails"])
        if has_findings(record):
            for page in finding_pages(self.iot, task_id):
                self._put(task_id, page)
                self.tally.findings += len(page)

    def _put(self, task_id: str, records: list[dict[str, Any]]) -> None:
        if self.firehose is None or not records:
            return
        failed = put_records(self.firehose, self.stream, [encode(record) for record in records])
        if failed:
            raise cli.CommandError(
                f"Firehose did not accept {len(failed)} of {len(records)} records of audit task "
                f"{task_id}; rerun (what was put is put again: dedup taskId / findingId)"
            )


def audit_tasks(
    iot: Any, since: datetime.datetime, until: datetime.datetime
) -> Iterator[Mapping[str, Any]]:
    """Every audit task (scheduled and on-demand) that started in the range, page by page."""
    pages = iot.get_paginator("list_audit_tasks").paginate(
        startTime=since, endTime=until, PaginationConfig={"PageSize": TASKS_PAGE_SIZE}
    )
    for page in pages:
        yield from page.get("tasks", [])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_argument_group("what to backfill")
    what.add_argument(
        "--since",
        type=utc_time,
        help="audits started from this UTC date or time, at most 90 days ago (default: 89 days)",
    )
    what.add_argument("--until", type=utc_time, help="up to, not including, this (default: now)")
    what.add_argument("--stream", help="the stack's delivery stream (not needed with --dry-run)")
    what.add_argument("--dry-run", action="store_true", help="list and count, put nothing")
    add_aws_arguments(parser)


def run(args: argparse.Namespace) -> int:
    since, until = _time_range(args.since, args.until)
    if not args.dry_run and not args.stream:
        raise cli.CommandError("give --stream, the delivery stream to put the audits into")
    tally = Tally()
    try:
        aws = session(args)
        iot = aws.client("iot", config=CONFIG)
        backfill = _Backfill(
            iot=iot,
            firehose=None if args.dry_run else aws.client("firehose", config=CONFIG),
            stream=args.stream or "",
            account_id=aws.client("sts", config=CONFIG).get_caller_identity()["Account"],
            tally=tally,
        )
        tasks = list(audit_tasks(iot, since, until))
        with progress("audit tasks", total=len(tasks)) as advance:
            for task in tasks:
                if task["taskStatus"] in FINISHED_STATUSES:
                    backfill.task(task["taskId"])
                else:
                    tally.in_progress += 1
                advance(1)
    except (BotoCoreError, ClientError) as error:
        print(tally.line(args.stream, args.dry_run))
        raise cli.CommandError(f"AWS: {describe_error(error)}") from None
    except cli.CommandError:
        print(tally.line(args.stream, args.dry_run))
        raise
    print(tally.line(args.stream, args.dry_run))
    return 0


def _time_range(
    since: datetime.datetime | None, until: datetime.datetime | None
) -> tuple[datetime.datetime, datetime.datetime]:
    now = utc_now()
    until = until or now
    since = since or now - DEFAULT_SPAN
    if since >= until:
        raise cli.CommandError("--since must be before --until")
    if since < now - RETENTION:
        raise cli.CommandError(
            f"--since {since:%Y-%m-%d} is older than the 90 days of audit history AWS keeps"
        )
    return since, until
