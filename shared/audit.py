"""Device Defender audit records as the pipeline takes them, built once for every producer.

The findings collector Lambda (``collect.audit_findings``) and the CLI's ``backfill-audit`` both
list a task's findings and put each into the delivery stream (encoded by
``shared.firehose.encode``); both use this module, so the transform sees the same records
whichever put them. Standard library only, like all of
``shared``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from shared.aws import IotClient

__all__ = ["FINDINGS_PAGE_SIZE", "FINISHED_STATUSES", "finding_page", "finding_pages"]

# ListAuditFindings accepts maxResults 1..250; the largest page means the fewest calls, and one
# page (at most 250 findings) is also what is held in memory and put per PutRecordBatch.
FINDINGS_PAGE_SIZE = 250
# Task statuses after which a task's findings no longer change.
FINISHED_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELED"})


def finding_page(
    iot: IotClient, task_id: str, token: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the task's findings, suppressed and not, and the next page's token.

    ``token`` None asks for the first page; a collector resumes with a token it saved.
    ``listSuppressedFindings`` is left out on purpose. The API reference defines it as a
    filter: true lists *only* suppressed findings, false only unsuppressed ones, and leaving it
    out lists both. Sending true would drop every actionable finding.
    """
    request: dict[str, Any] = {"taskId": task_id, "maxResults": FINDINGS_PAGE_SIZE}
    if token:
        request["nextToken"] = token
    page = iot.list_audit_findings(**request)
    # Handled as plain JSON objects: the record keeps every field AWS sends, typed or not.
    return cast("list[dict[str, Any]]", page.get("findings", [])), page.get("nextToken") or None


def finding_pages(iot: IotClient, task_id: str) -> Iterator[list[dict[str, Any]]]:
    """The task's findings one API page at a time, from the first."""
    findings, token = finding_page(iot, task_id, None)
    yield findings
    while token:
        findings, token = finding_page(iot, task_id, token)
        yield findings
