"""A task's audit findings, page by page, as every producer lists them."""

from __future__ import annotations

import boto3
from botocore.stub import Stubber

from shared.audit import FINDINGS_PAGE_SIZE, finding_pages


def test_every_page_of_findings_suppressed_or_not_and_an_empty_page_is_no_findings() -> None:
    iot = boto3.client("iot", region_name="eu-west-1")
    finding = {"findingId": "f-1", "checkName": "LOGGING_DISABLED_CHECK", "isSuppressed": True}
    asked = {"taskId": "t-1", "maxResults": FINDINGS_PAGE_SIZE}
    with Stubber(iot) as stubber:
        stubber.add_response(
            "list_audit_findings", {"findings": [finding], "nextToken": "t2"}, asked
        )
        stubber.add_response("list_audit_findings", {}, {**asked, "nextToken": "t2"})

        pages = list(finding_pages(iot, "t-1"))

        stubber.assert_no_pending_responses()
    assert pages == [[finding], []]
    assert FINDINGS_PAGE_SIZE == 250  # ListAuditFindings' largest page: the fewest calls
