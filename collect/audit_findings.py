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

Collection is resumable and idempotent per task, with a checkpoint in DynamoDB
(``collect.checkpoint``, key ``audit#<taskId>``). The invocation claims the task's item; a
redelivered notification for a task already collected, or being collected under a live lease,
puts nothing. After each PutRecordBatch the cursor (the page token and how many of its findings
are put) is saved, so a killed slice re-puts at most the batch in flight. When time runs out
(``OutOfTimeError``: every call stops early enough to put, checkpoint, log and emit metrics),
or an IoT or Firehose error outlasts its retries, the slice ends at its checkpoint and invokes
this function again with ``{"resume": "audit#<taskId>"}`` (``collect.continuation``). A slice
that made no progress, or an export past ``MAX_SLICES``, fails instead: Lambda retries the
event, then its dead-letter queue keeps it, the error naming the checkpoint key and cursor.
Invoking the function with ``{"resume": "audit#<taskId>"}`` resumes it by hand.

Environment: ``DELIVERY_STREAM_NAME`` (read by ``collect.delivery``), ``CHECKPOINT_TABLE_NAME``,
``MAX_SLICES`` (default 48), plus the usual powertools variables (``POWERTOOLS_LOG_LEVEL`` …).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from collect.checkpoint import (
    ClaimRefusedError,
    ExportStalledError,
    LeaseLostError,
    checkpoint_store,
)
from collect.continuation import SLICE_ENDINGS, Slice, lambda_client, resume_key
from collect.cursor import START, Position, listing
from collect.deadline import Deadline, OutOfTimeError
from collect.delivery import (
    NO_DEADLINE,
    RecordBuffer,
    firehose_client,
    iot_client,
    stream_name,
)
from shared.audit import FINISHED_STATUSES, finding_page
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
SLICES_CONTINUED = "AuditSlicesContinued"
NOTIFICATIONS_DUPLICATE = "AuditNotificationsDuplicate"
EXPORTS_STALLED = "AuditExportsStalled"

CHECKPOINT_PREFIX: Final = "audit#"


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
    # Just after the last finding put: where the next slice resumes.
    position: dict[str, Any] = field(default_factory=dict)

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
    start: Position = START,
    on_put: Callable[[TaskCollection], None] = lambda _: None,
) -> TaskCollection:
    """List the findings of one audit task from ``start`` and put each into Firehose.

    Raises what the IoT API raises after its retries, ``DeliveryError`` or ``OutOfTimeError``;
    what was read before is put first. ``collection`` (updated in place) says how far the run
    got; ``on_put`` is told after each batch Firehose accepted whole (``position`` moved).
    """
    collection = TaskCollection(task_id) if collection is None else collection

    def fetch(token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        page = finding_page(iot, task_id, token)
        collection.pages += 1
        return page

    def put(mark: dict[str, Any]) -> None:
        _count(collection, buffer)
        collection.position = mark
        on_put(collection)

    buffer = RecordBuffer(
        firehose,
        deadline or NO_DEADLINE,
        collector=SERVICE,
        identity=finding_identity,
        on_put=put,
    )
    try:
        with buffer:
            for finding, after in listing(fetch, start):
                buffer.add(finding, after.as_dict())
        collection.listing_complete = True  # listed to the end, and the last batch put
    finally:
        _count(collection, buffer)
    return collection


def _count(collection: TaskCollection, buffer: RecordBuffer) -> None:
    collection.findings = buffer.put
    collection.not_put = buffer.not_put
    collection.cleaned = buffer.cleaned


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
    """Collect the findings of each audit notification in an SNS event, or resume one export.

    ``{"resume": "audit#<taskId>"}`` (sent by the previous slice, or by an operator) resumes
    that task at its checkpoint. Returns a summary: one entry per SNS record (or the resumed
    task) with its outcome (``collected``, ``continued``, ``skipped``, ``taken-over`` or
    ``invalid``) and counts, plus the total findings put.
    """
    counts: Counter[str] = Counter()
    results: list[dict[str, Any]] = []
    deadline = Deadline.from_context(context)
    try:
        key = resume_key(event)
        records = event.get("Records") if isinstance(event, dict) else None
        if key is not None:
            results.append(_resume(key, event, counts, deadline, context))
        elif not isinstance(records, list) or not records:
            counts[NOTIFICATIONS_INVALID] += 1
            logger.error("invalid event: no SNS Records", extra={"reason": "no Records list"})
        else:
            results.extend(_handle_record(record, counts, deadline, context) for record in records)
    finally:
        _publish(counts)
    return {"results": results, "findings": counts[FINDINGS_COLLECTED]}


def _resume(
    key: str, event: Any, counts: Counter[str], deadline: Deadline, context: LambdaContext
) -> dict[str, Any]:
    task_id = key.removeprefix(CHECKPOINT_PREFIX)
    if not key.startswith(CHECKPOINT_PREFIX) or not _TASK_ID.fullmatch(task_id):
        return _invalid(counts, None, f"resume key {_preview(key)} is not audit#<taskId>")
    result: dict[str, Any] = {"messageId": None, "taskId": task_id, "taskStatus": None}
    about = {"task_id": task_id, "resume": key}
    return _collect(
        task_id, about, result, counts=counts, deadline=deadline, context=context, event=event
    )


def _handle_record(
    record: Any, counts: Counter[str], deadline: Deadline, context: LambdaContext
) -> dict[str, Any]:
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
        "non_compliant_checks": list(notification.non_compliant_checks),
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
    return _collect(
        notification.task_id,
        about,
        result,
        counts=counts,
        deadline=deadline,
        context=context,
        event=None,
    )


def _collect(
    task_id: str,
    about: dict[str, Any],
    result: dict[str, Any],
    *,
    counts: Counter[str],
    deadline: Deadline,
    context: LambdaContext,
    event: Any,
) -> dict[str, Any]:
    """One slice of the task's collection: claim, put from the cursor, finish or hand off."""
    stream_name()  # a missing setting fails before any client is made or API called
    try:
        turn = Slice.claim(
            checkpoint_store(deadline),
            CHECKPOINT_PREFIX + task_id,
            context.aws_request_id,
            lease_ms=context.get_remaining_time_in_millis(),
            restart="never",
            event=event,
        )
    except ClaimRefusedError as refusal:
        counts[NOTIFICATIONS_DUPLICATE] += 1
        logger.info("audit task not collected again", extra={**about, "reason": str(refusal)})
        return {**result, "outcome": "skipped", "reason": str(refusal), "pages": 0, "findings": 0}
    except ExportStalledError as stalled:
        counts[EXPORTS_STALLED] += 1
        logger.error("audit findings export stalled", extra={**about, "reason": str(stalled)})
        raise
    collection = TaskCollection(task_id)

    def where() -> dict[str, Any]:
        return {**about, **_progress(collection), **turn.checkpoint.where()}

    try:
        collect_task(
            task_id,
            iot_client(deadline),
            firehose_client(deadline),
            deadline=deadline,
            collection=collection,
            start=Position.from_dict(turn.checkpoint.cursor),
            on_put=lambda c: turn.save(c.position, c.findings + c.not_put, c.pages),
        )
    except LeaseLostError as lost:
        logger.warning(
            "audit findings slice taken over; it stops", extra={**where(), "reason": str(lost)}
        )
        return {
            **result,
            "outcome": "taken-over",
            "reason": str(lost),
            "pages": collection.pages,
            "findings": collection.findings,
        }
    except SLICE_ENDINGS as error:
        out_of_time = isinstance(error, OutOfTimeError)
        counts[COLLECTIONS_STOPPED if out_of_time else COLLECTION_ERRORS] += 1
        counts[LISTINGS_UNFINISHED] += collection.next_token_pending
        logger.warning(
            "audit findings slice ended at its checkpoint"
            + (
                " before the Lambda timeout: out of time" if out_of_time else ": an AWS call failed"
            ),
            extra={**where(), "reason": str(error)},
        )
    except Exception:
        counts[COLLECTION_ERRORS] += 1
        logger.exception("audit findings collection failed", extra=where())
        raise
    finally:
        counts[PAGES_READ] += collection.pages
        counts[FINDINGS_COLLECTED] += collection.findings
        counts[FINDINGS_NOT_PUT] += collection.not_put
        counts[FINDINGS_CLEANED] += collection.cleaned
    try:
        ending = turn.hand_off(
            collection.listing_complete, lambda: lambda_client(deadline), context.function_name
        )
    except ExportStalledError as stalled:
        counts[EXPORTS_STALLED] += 1
        logger.error("audit findings export stalled", extra={**where(), "reason": str(stalled)})
        raise
    summary = {**result, "reason": None, "pages": collection.pages, "findings": collection.findings}
    if ending == "continued":
        counts[SLICES_CONTINUED] += 1
        logger.info("audit findings slice handed off to the next slice", extra=where())
        return {**summary, "outcome": "continued"}
    counts[TASKS_COLLECTED] += 1
    logger.info("audit findings collected", extra=where())
    return {**summary, "outcome": "collected"}


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
        SLICES_CONTINUED,
        NOTIFICATIONS_DUPLICATE,
        EXPORTS_STALLED,
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
