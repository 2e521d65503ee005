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

__all__ = ["FINDINGS_PAGE_SIZE", "FINISHED_STATUSES", "finding_pages"]

# ListAuditFindings accepts maxResults 1..250; the largest page means the fewest calls, and one
# page (at most 250 findings) is also what is held in memory and put per PutRecordBatch.
FINDINGS_PAGE_SIZE = 250
# Task statuses after which a task's findings no longer change.
FINISHED_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELED"})


def finding_pages(iot: IotClient, task_id: str) -> Iterator[list[dict[str, Any]]]:
    """The task's findings, suppressed and not, one API page at a time.

    ``listSuppressedFindings`` is left out on purpose. The API reference defines it as a
    filter: true lists *only* suppressed findings, false only unsuppressed ones, and leaving it
    out lists both. Sending true would drop every actionable finding.
    """
    paginator = iot.get_paginator("list_audit_findings")
    pages = paginator.paginate(taskId=task_id, PaginationConfig={"PageSize": FINDINGS_PAGE_SIZE})
    for page in pages:
        # Handled as plain JSON objects: the record keeps every field AWS sends, typed or not.
        yield cast("list[dict[str, Any]]", page.get("findings", []))
