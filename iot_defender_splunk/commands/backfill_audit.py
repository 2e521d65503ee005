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

--task-id (repeatable) backfills just those tasks, and --from-dead-letter FILE the tasks of
the findings collector's dead-letter messages (FILE: what `aws sqs receive-message` prints, one
message, or one message body): the way to recover a collection that stopped for good, e.g.
once its checkpoint is gone. Resuming the collector itself (invoke it with
`{"resume": "audit#<taskId>"}`) puts only what is missing; this puts the whole task again.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
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
# The API's taskId constraint, and the findings collector's checkpoint keys (audit#<taskId>).
_TASK_ID = re.compile(r"[a-zA-Z0-9-]{1,40}")
_CHECKPOINT_PREFIX = "audit#"
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
        if described["taskStatus"] not in FINISHED_STATUSES:
            self.tally.in_progress += 1
            return
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


def task_id(text: str) -> str:
    """An audit task id as the API accepts it (argparse type)."""
    if not _TASK_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text[:64]!r} is not an audit task id")
    return text


def dead_letter_task_ids(text: str) -> list[str]:
    """The audit task ids in the findings collector's dead-letter messages, in order, once each.

    ``text`` is `aws sqs receive-message` output (``{"Messages": [...]}``), one message
    (``{"Body": ...}``), or one body: the SNS event or the ``{"resume": "audit#<taskId>"}``
    event that failed. ValueError says why nothing usable was found.
    """
    document = _json(text, "the file")
    messages = document.get("Messages", [document]) if isinstance(document, dict) else None
    if not isinstance(messages, list):
        raise ValueError("the file is not a dead-letter message or receive-message output")
    found: list[str] = []
    for message in messages:
        body = message.get("Body", message) if isinstance(message, dict) else message
        event = _json(body, "a message body") if isinstance(body, str) else body
        found.extend(_event_task_ids(event))
    if not found:
        raise ValueError("no audit task id in the file's messages")
    return list(dict.fromkeys(found))


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{what} is not JSON ({error.msg}, line {error.lineno})") from None


def _event_task_ids(event: Any) -> Iterator[str]:
    """The task of a resume event, or of each audit notification in an SNS event."""
    if not isinstance(event, dict):
        return
    resume = event.get("resume")
    if isinstance(resume, str) and resume.startswith(_CHECKPOINT_PREFIX):
        candidates: list[Any] = [resume.removeprefix(_CHECKPOINT_PREFIX)]
    else:
        candidates = [_notification_task(record) for record in event.get("Records") or []]
    yield from (c for c in candidates if isinstance(c, str) and _TASK_ID.fullmatch(c))


def _notification_task(record: Any) -> Any:
    message = record.get("Sns", {}).get("Message") if isinstance(record, dict) else None
    try:
        notification = json.loads(message) if isinstance(message, str) else None
    except json.JSONDecodeError:
        return None
    return notification.get("taskId") if isinstance(notification, dict) else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_argument_group("what to backfill")
    what.add_argument(
        "--since",
        type=utc_time,
        help="audits started from this UTC date or time, at most 90 days ago (default: 89 days)",
    )
    what.add_argument("--until", type=utc_time, help="up to, not including, this (default: now)")
    what.add_argument(
        "--task-id",
        type=task_id,
        action="append",
        help="just this audit task (repeatable), instead of a time range",
    )
    what.add_argument(
        "--from-dead-letter",
        type=Path,
        metavar="FILE",
        help="the tasks of the findings collector's dead-letter messages in FILE "
        "(aws sqs receive-message output), instead of a time range",
    )
    what.add_argument("--stream", help="the stack's delivery stream (not needed with --dry-run)")
    what.add_argument("--dry-run", action="store_true", help="list and count, put nothing")
    add_aws_arguments(parser)


def run(args: argparse.Namespace) -> int:
    named = _named_tasks(args)
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
        tasks = named or list(_finished(audit_tasks(iot, since, until), tally))
        with progress("audit tasks", total=len(tasks)) as advance:
            for task in tasks:
                backfill.task(task)
                advance(1)
    except (BotoCoreError, ClientError) as error:
        print(tally.line(args.stream, args.dry_run))
        raise cli.CommandError(f"AWS: {describe_error(error)}") from None
    except cli.CommandError:
        print(tally.line(args.stream, args.dry_run))
        raise
    print(tally.line(args.stream, args.dry_run))
    return 0


def _finished(tasks: Iterator[Mapping[str, Any]], tally: Tally) -> Iterator[str]:
    """The ids of the finished tasks; those still in progress are counted and left out."""
    for task in tasks:
        if task["taskStatus"] in FINISHED_STATUSES:
            yield task["taskId"]
        else:
            tally.in_progress += 1


def _named_tasks(args: argparse.Namespace) -> list[str]:
    """The tasks --task-id and --from-dead-letter name, or [] for a time range."""
    named = list(args.task_id or [])
    if args.from_dead_letter is not None:
        try:
            named += dead_letter_task_ids(args.from_dead_letter.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise cli.CommandError(f"--from-dead-letter {args.from_dead_letter}: {error}") from None
    if named and (args.since or args.until):
        raise cli.CommandError(
            "--task-id and --from-dead-letter name tasks: leave out --since/--until"
        )
    return list(dict.fromkeys(named))


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
