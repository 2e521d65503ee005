"""Audit findings collector: a completed audit's findings, one Firehose record per finding.

The audit notification that Device Defender publishes to SNS carries counts only, no resource
identities; the findings themselves are an API read (``ListAuditFindings``). This Lambda is
subscribed to the audit notification topic and, for a finished audit with at least one
non-compliant check, pages through the task's findings (suppressed ones included, flagged by
``isSuppressed``) and puts each finding, as boto3 returns it, into the pipeline's delivery
stream. The transform decodes a raw finding to ``aws:iot:defender:audit:finding``.

What is deliberately *not* collected, and why nothing is lost:

* In-progress audits, and audits where no check was non-compliant, collect nothing. A FAILED or
  CANCELED audit still lists the findings of the checks that did complete non-compliant: those
  findings exist and are as actionable as any. The notification itself reaches Splunk through
  the topic's own Firehose subscription (``aws:iot:defender:audit:task`` and ``…:audit:check``).
* A message that is not an audit notification (not JSON, no usable ``taskId`` or
  ``taskStatus``) is logged and counted, never raised: a retry would read the same bytes, and the
  raw message already reached Splunk through that same subscription.

Findings are put 500 to a PutRecordBatch (``collect.delivery.RecordBuffer``), across pages.
One finding never fails the run: a lone surrogate in it (which UTF-8 cannot carry) is replaced
by U+FFFD, and a finding over Firehose's 1,000 KiB record limit is sent as a small
``aws:iot:collector:not-put`` record naming it (an unparsed event in Splunk); both are counted.

Failures that a retry can fix do fail the invocation: an IoT API error that is still there after
botocore's adaptive retries, records Firehose keeps rejecting (``DeliveryError``), or the
invocation's time running out (``OutOfTimeError``: every call stops early enough for the run to
put what it holds, log how far it got and emit its metrics, instead of a Lambda timeout).
Lambda's asynchronous retries then run the whole notification again, and its on-failure
destination keeps it once those are spent. A retried invocation puts again the findings an
earlier attempt had already put: Splunk indexes them twice, so searches over findings should
``dedup findingId`` (a finding's id is stable within its task).

Environment: ``DELIVERY_STREAM_NAME`` (read by ``collect.delivery``), plus the usual powertools
variables (``POWERTOOLS_LOG_LEVEL`` …).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from collect.deadline import Deadline, OutOfTimeError
from collect.delivery import NO_DEADLINE, RecordBuffer, firehose_client, iot_client, stream_name
from shared.audit import FINISHED_STATUSES, finding_pages
from shared.aws import IotClient
from shared.firehose import FirehoseClient
from shared.observability import METRICS_NAMESPACE

SERVICE = "audit-findings-collector"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)

# The API's taskId constraint (1..40 of [a-zA-Z0-9-]): anything else can never be listed.
_TASK_ID = re.compile(r"[a-zA-Z0-9-]{1,40}")
_NON_COMPLIANT = "COMPLETED_NON_COMPLIANT"

# Metric names, all counts per invocation.
FINDINGS_COLLECTED = "AuditFindingsCollected"
PAGES_READ = "AuditFindingPagesRead"
TASKS_COLLECTED = "AuditTasksCollected"
NOTIFICATIONS_SKIPPED = "AuditNotificationsSkipped"
NOTIFICATIONS_INVALID = "AuditNotificationsInvalid"
COLLECTION_ERRORS = "AuditCollectionErrors"
COLLECTIONS_STOPPED = "AuditCollectionsStopped"
FINDINGS_NOT_PUT = "AuditFindingsNotPut"
FINDINGS_CLEANED = "AuditFindingsCleaned"
LISTINGS_UNFINISHED = "AuditListingsUnfinished"


class InvalidNotificationError(ValueError):
    """The SNS message is not a usable audit notification; retrying cannot change that."""


@dataclass(frozen=True)
class AuditNotification:
    """The fields of an audit notification that decide whether, and what, to collect."""

    task_id: str
    task_status: str
    task_type: str | None
    scheduled_audit_name: str | None
    non_compliant_checks_count: int
    non_compliant_checks: tuple[str, ...]

    @property
    def has_non_compliant_checks(self) -> bool:
        return self.non_compliant_checks_count > 0 or bool(self.non_compliant_checks)


@dataclass
class TaskCollection:
    """What collecting one audit task put into Firehose, filled in as the collection goes."""

    task_id: str
    pages: int = 0
    findings: int = 0
    not_put: int = 0
    cleaned: int = 0
    listing_complete: bool = False

    @property
    def next_token_pending(self) -> bool:
        """A page was read and the listing did not end: the last page read had a nextToken."""
        return self.pages > 0 and not self.listing_complete


def parse_notification(message: Any) -> AuditNotification:
    """The SNS ``Message`` as an audit notification; InvalidNotificationError says why not."""
    if not isinstance(message, str):
        raise InvalidNotificationError("SNS record has no Message string")
    try:
        doc = orjson.loads(message)
    except orjson.JSONDecodeError as error:
        raise InvalidNotificationError(f"Message is not JSON: {error}") from None
    if not isinstance(doc, dict):
        raise InvalidNotificationError(f"Message is JSON {type(doc).__name__}, not an object")
    task_id = doc.get("taskId")
    if not isinstance(task_id, str) or not _TASK_ID.fullmatch(task_id):
        raise InvalidNotificationError(f"Message has no valid taskId (got {_preview(task_id)})")
    task_status = doc.get("taskStatus")
    if not isinstance(task_status, str) or not task_status:
        raise InvalidNotificationError(f"Message has no taskStatus (got {_preview(task_status)})")
    count = doc.get("nonCompliantChecksCount")
    details = doc.get("auditDetails")
    return AuditNotification(
        task_id=task_id,
        task_status=task_status,
        task_type=_optional_str(doc.get("taskType")),
        scheduled_audit_name=_optional_str(doc.get("scheduledAuditName")),
        non_compliant_checks_count=count if type(count) is int else 0,
        non_compliant_checks=tuple(_non_compliant_checks(details)),
    )


def skip_reason(notification: AuditNotification) -> str | None:
    """Why this audit has no findings worth listing, or None when it has."""
    if notification.task_status not in FINISHED_STATUSES:
        return (
            f"audit task is {notification.task_status}; findings are listed once it is "
            f"{', '.join(sorted(FINISHED_STATUSES))}"
        )
    if not notification.has_non_compliant_checks:
        return f"audit {notification.task_status} with no non-compliant check"
    return None


def collect_task(
    task_id: str,
    iot: IotClient,
    firehose: FirehoseClient,
    *,
    deadline: Deadline | None = None,
    collection: TaskCollection | None = None,
) -> TaskCollection:
    """List every finding of one audit task and put each into Firehose, 500 to a call.

    Raises what the IoT API raises after its retries, ``DeliveryError`` or ``OutOfTimeError``;
    what was read before is put first, and ``collection`` (updated in place) says how far the
    run got (see the module docstring on retries).
    """
    collection = TaskCollection(task_id) if collection is None else collection
    buffer = RecordBuffer(
        firehose, deadline or NO_DEADLINE, collector=SERVICE, identity=finding_identity
    )
    try:
        with buffer:
            for page in finding_pages(iot, task_id):
                collection.pages += 1
                for finding in page:
                    buffer.add(finding)
            collection.listing_complete = True
    finally:
        collection.findings = buffer.put
        collection.not_put = buffer.not_put
        collection.cleaned = buffer.cleaned
    return collection


def finding_identity(finding: dict[str, Any]) -> dict[str, Any]:
    """What names a finding that could not be put, and what it is about (AWS-set fields)."""
    resource = finding.get("nonCompliantResource")
    identity = {key: finding.get(key) for key in ("taskId", "findingId", "checkName", "severity")}
    if isinstance(resource, dict):
        identity["resourceType"] = resource.get("resourceType")
    return identity


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Collect the findings of each audit notification in an SNS event.

    Returns a summary: one entry per SNS record with its outcome (``collected``, ``skipped`` or
    ``invalid``) and counts, plus the total findings put.
    """
    counts: Counter[str] = Counter()
    results: list[dict[str, Any]] = []
    deadline = Deadline.from_context(context)
    try:
        records = event.get("Records")
        if not isinstance(records, list) or not records:
            counts[NOTIFICATIONS_INVALID] += 1
            logger.error("invalid event: no SNS Records", extra={"reason": "no Records list"})
        else:
            results.extend(_handle_record(record, counts, deadline) for record in records)
    finally:
        _publish(counts)
    return {"results": results, "findings": counts[FINDINGS_COLLECTED]}


def _handle_record(record: Any, counts: Counter[str], deadline: Deadline) -> dict[str, Any]:
    sns = record.get("Sns") if isinstance(record, dict) else None
    if not isinstance(sns, dict):
        return _invalid(counts, None, "record is not an SNS notification (no Sns object)")
    message_id = _optional_str(sns.get("MessageId"))
    try:
        notification = parse_notification(sns.get("Message"))
    except InvalidNotificationError as error:
        return _invalid(counts, message_id, str(error), topic=sns.get("TopicArn"))

    about = {
        "message_id": message_id,
        "task_id": notification.task_id,
        "task_status": notification.task_status,
        "task_type": notification.task_type,
        "scheduled_audit_name": notification.scheduled_audit_name,
    }
    result: dict[str, Any] = {
        "messageId": message_id,
        "taskId": notification.task_id,
        "taskStatus": notification.task_status,
    }
    reason = skip_reason(notification)
    if reason:
        counts[NOTIFICATIONS_SKIPPED] += 1
        logger.info("audit notification skipped", extra={**about, "reason": reason})
        return {**result, "outcome": "skipped", "reason": reason, "pages": 0, "findings": 0}

    stream_name()  # a missing setting fails before any client is made or API called
    collection = TaskCollection(notification.task_id)
    try:
        collect_task(
            notification.task_id,
            iot_client(deadline),
            firehose_client(deadline),
            deadline=deadline,
            collection=collection,
        )
    except OutOfTimeError as error:
        counts[COLLECTIONS_STOPPED] += 1
        counts[LISTINGS_UNFINISHED] += collection.next_token_pending
        logger.error(
            "audit findings collection stopped before the Lambda timeout: out of time; the "
            "invocation will be retried",
            extra={**about, **_progress(collection), "reason": str(error)},
        )
        raise
    except Exception:
        counts[COLLECTION_ERRORS] += 1
        logger.exception(
            "audit findings collection failed; the invocation will be retried",
            extra={**about, **_progress(collection)},
        )
        raise
    finally:
        counts[PAGES_READ] += collection.pages
        counts[FINDINGS_COLLECTED] += collection.findings
        counts[FINDINGS_NOT_PUT] += collection.not_put
        counts[FINDINGS_CLEANED] += collection.cleaned
    counts[TASKS_COLLECTED] += 1
    logger.info(
        "audit findings collected",
        extra={
            **about,
            "non_compliant_checks": list(notification.non_compliant_checks),
            **_progress(collection),
        },
    )
    return {
        **result,
        "outcome": "collected",
        "reason": None,
        "pages": collection.pages,
        "findings": collection.findings,
    }


def _progress(collection: TaskCollection) -> dict[str, Any]:
    """Where a collection got to, for its log lines."""
    return {
        "pages": collection.pages,
        "findings": collection.findings,
        "findings_not_put": collection.not_put,
        "findings_cleaned": collection.cleaned,
        "listing_complete": collection.listing_complete,
        "next_token_pending": collection.next_token_pending,
    }


def _invalid(
    counts: Counter[str], message_id: str | None, reason: str, *, topic: Any = None
) -> dict[str, Any]:
    counts[NOTIFICATIONS_INVALID] += 1
    logger.error(
        "invalid audit notification, not collected",
        extra={"message_id": message_id, "topic_arn": topic, "reason": reason},
    )
    return {
        "messageId": message_id,
        "taskId": None,
        "taskStatus": None,
        "outcome": "invalid",
        "reason": reason,
        "pages": 0,
        "findings": 0,
    }


def _publish(counts: Counter[str]) -> None:
    """Every counter, zeros included, so each invocation's metrics are complete and comparable."""
    for name in (
        FINDINGS_COLLECTED,
        PAGES_READ,
        TASKS_COLLECTED,
        NOTIFICATIONS_SKIPPED,
        NOTIFICATIONS_INVALID,
        COLLECTION_ERRORS,
        COLLECTIONS_STOPPED,
        LISTINGS_UNFINISHED,
        FINDINGS_NOT_PUT,
        FINDINGS_CLEANED,
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=counts[name])


def _non_compliant_checks(details: Any) -> Iterator[str]:
    if not isinstance(details, list):
        return
    for item in details:
        if not isinstance(item, dict):
            continue
        status = item.get("checkRunStatus")
        if isinstance(status, str) and status.startswith(_NON_COMPLIANT):
            yield str(item.get("checkName") or "?")


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _preview(value: Any) -> str:
    return repr(value)[:64]
