"""The audit findings collector: SNS audit notification in, one Firehose record per finding out.

ListAuditFindings is not in moto, so the IoT side is a real boto3 client under botocore's
Stubber (request and response shapes checked against the service model) or, for the retry
test, a real client whose HTTP send is replaced. Firehose is moto (records read back from S3)
or a fake that rejects entries the way PutRecordBatch reports partial failures.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import boto3
import botocore.retries.bucket
import botocore.retries.standard
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.stub import Stubber
from botocore.utils import parse_timestamp
from moto import mock_aws

import collect.delivery
from collect import audit_findings
from collect.audit_findings import (
    InvalidNotificationError,
    collect_task,
    lambda_handler,
    parse_notification,
    skip_reason,
)
from collect.checkpoint import ExportStalledError
from collect.deadline import Deadline
from collect.delivery import NO_DEADLINE, PUT_MAX_ATTEMPTS, DeliveryError
from tests.checkpoints import Engine, WallClock
from tests.collector_time import record_put_waits
from tests.fakes import FakeFirehose
from tests.support import SAMPLES_DIR, FakeLambdaContext, all_events, firehose_event

# In sub-folders: samples/<kind>/*.json are transform inputs, iterated by other tests.
FIXTURES = SAMPLES_DIR / "audit_collector"
STREAM = "iot-defender-splunk"


def finding_id(payload: bytes) -> str:
    """The key the fake Firehose rejects records by: the finding each record is."""
    return str(json.loads(payload)["findingId"])


def put_ids(firehose: FakeFirehose) -> list[str]:
    """The findings Firehose accepted, in order."""
    return [record["findingId"] for record in firehose.documents]


TASK_ID = "5c1f0e9a3b7d42e8a6f4d2c19b8e7a30"
REGION = "eu-west-1"
CONTEXT = FakeLambdaContext(
    function_name="iot-defender-splunk-audit-findings",
    invoked_function_arn=(
        "arn:aws:lambda:eu-west-1:123456789012:function:iot-defender-splunk-audit-findings"
    ),
)


# --- fixtures and helpers -------------------------------------------------------------------


def load(name: str) -> Any:
    """An SNS event (sns/) or a ListAuditFindings page (api/) by file name."""
    folder = "api" if name.startswith("list_audit_findings") else "sns"
    return json.loads((FIXTURES / folder / name).read_text(encoding="utf-8"))


def wire_page(number: int) -> dict[str, Any]:
    """A ListAuditFindings page as the service sends it (timestamps are epoch seconds)."""
    page: dict[str, Any] = load(f"list_audit_findings_page{number}.json")
    return page


def boto_page(number: int) -> dict[str, Any]:
    """The same page as boto3 hands it to the caller: timestamps parsed to datetimes."""
    page = wire_page(number)
    for finding in page["findings"]:
        for key in ("taskStartTime", "findingTime"):
            finding[key] = parse_timestamp(finding[key])
    return page


PAGES = [wire_page(n) for n in (1, 2, 3)]
ALL_FINDINGS = [finding for page in PAGES for finding in page["findings"]]
ALL_IDS = [finding["findingId"] for finding in ALL_FINDINGS]


def expected_params(next_token: str | None = None) -> dict[str, Any]:
    # No listSuppressedFindings: it filters (true = only suppressed); absent lists both.
    params: dict[str, Any] = {"taskId": TASK_ID, "maxResults": 250}
    if next_token:
        params["nextToken"] = next_token
    return params


def queue_pages(stubber: Stubber, count: int = 3) -> None:
    """Queue the fixture pages 1..count, each expecting exactly the request that fetches it."""
    token = None
    for number in range(1, count + 1):
        stubber.add_response("list_audit_findings", boto_page(number), expected_params(token))
        token = wire_page(number).get("nextToken")


def iot() -> Any:
    return boto3.client(
        "iot",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The stack's settings, fake credentials, and no real sleeping between Firehose retries.

    The backoff of ``put_records`` is recorded instead of slept; the waits it asked for are
    returned.
    """
    monkeypatch.setenv("DELIVERY_STREAM_NAME", STREAM)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return record_put_waits(monkeypatch)


@pytest.fixture(autouse=True)
def engine(monkeypatch: pytest.MonkeyPatch) -> Engine:
    """The checkpoint table (in memory) and the continuation invokes, recorded."""
    return Engine(monkeypatch, audit_findings, WallClock())


class Clients:
    """The clients the handler gets from its factories, and how often it asked for them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, iot_client: Any, firehose: Any) -> None:
        self.iot_created = 0
        self.firehose_created = 0

        def make_iot(*_: Any) -> Any:
            self.iot_created += 1
            return iot_client

        def make_firehose(*_: Any) -> Any:
            self.firehose_created += 1
            return firehose

        monkeypatch.setattr(audit_findings, "iot_client", make_iot)
        monkeypatch.setattr(audit_findings, "firehose_client", make_firehose)


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = iot()
    with Stubber(client) as stubber:
        yield client, stubber


def run(event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = lambda_handler(event, CONTEXT)
    return result


def emf(output: str) -> dict[str, float]:
    """The collector's metrics, by name, from the one EMF document in captured stdout."""
    documents = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    (document,) = [doc for doc in documents if "_aws" in doc]
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "IotDefenderSplunk"
    assert directive["Dimensions"] == [["service"]]
    assert document["service"] == "audit-findings-collector"
    names = [metric["Name"] for metric in directive["Metrics"]]
    assert all(len(document[name]) == 1 for name in names)  # each counted once per invocation
    return {name: document[name][0] for name in names}


# --- parsing the notification ----------------------------------------------------------------


def sns_message(name: str) -> str:
    message: str = load(name)["Records"][0]["Sns"]["Message"]
    return message


def test_parse_notification_reads_what_decides_collection() -> None:
    notification = parse_notification(sns_message("sns_completed_scheduled_noncompliant.json"))
    assert notification.task_id == TASK_ID
    assert notification.task_status == "COMPLETED"
    assert notification.task_type == "SCHEDULED_AUDIT_TASK"
    assert notification.scheduled_audit_name == "daily-fleet-audit"
    assert notification.non_compliant_checks_count == 5
    assert notification.non_compliant_checks == (
        "DEVICE_CERTIFICATE_SHARED_CHECK",
        "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
        "CONFLICTING_CLIENT_IDS_CHECK",
        "DEVICE_CERTIFICATE_EXPIRING_CHECK",
        "LOGGING_DISABLED_CHECK",
    )
    assert skip_reason(notification) is None


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON list, not an object"),
        ('{"taskStatus": "COMPLETED"}', "no valid taskId (got None)"),
        ('{"taskId": "", "taskStatus": "COMPLETED"}', "no valid taskId"),
        ('{"taskId": "a/../b", "taskStatus": "COMPLETED"}', "no valid taskId"),
        ('{"taskId": "' + "a" * 41 + '", "taskStatus": "COMPLETED"}', "no valid taskId"),
        ('{"taskId": 42, "taskStatus": "COMPLETED"}', "no valid taskId (got 42)"),
        ('{"taskId": "abc"}', "no taskStatus"),
        ('{"taskId": "abc", "taskStatus": ["COMPLETED"]}', "no taskStatus"),
        (None, "no Message string"),
    ],
)
def test_parse_notification_says_why_a_message_is_unusable(message: Any, reason: str) -> None:
    with pytest.raises(InvalidNotificationError, match=re.escape(reason)):
        parse_notification(message)


def test_a_non_compliant_detail_alone_is_enough_to_collect() -> None:
    notification = parse_notification(sns_message("sns_completed_noncompliant_details_only.json"))
    assert notification.non_compliant_checks_count == 0
    assert notification.non_compliant_checks == ("LOGGING_DISABLED_CHECK",)
    assert skip_reason(notification) is None


def test_a_boolean_count_is_not_a_count() -> None:
    message = '{"taskId": "abc", "taskStatus": "COMPLETED", "nonCompliantChecksCount": true}'
    notification = parse_notification(message)
    assert notification.non_compliant_checks_count == 0
    assert skip_reason(notification) == "audit COMPLETED with no non-compliant check"


# --- collecting: request shape, paging, order ----------------------------------------------


def test_every_page_is_listed_with_the_exact_request_and_put_in_order(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    queue_pages(stubber)
    firehose = FakeFirehose(STREAM)

    collection = collect_task(TASK_ID, client, firehose)

    stubber.assert_no_pending_responses()
    assert (collection.pages, collection.findings) == (3, 6)
    assert put_ids(firehose) == ALL_IDS
    # Pages are buffered into full batches: the three pages' six findings make one call.
    assert [[r["findingId"] for r in call] for call in firehose.call_documents] == [ALL_IDS]


def test_records_are_the_raw_findings_with_epoch_second_times(
    stubbed: tuple[Any, Stubber],
) -> None:
    client, stubber = stubbed
    queue_pages(stubber)
    firehose = FakeFirehose(STREAM)

    collect_task(TASK_ID, client, firehose)

    put = firehose.documents
    assert put == ALL_FINDINGS  # the wire finding: every key kept, datetimes back to seconds
    # Suppressed and unsuppressed findings both come back from the one unfiltered listing.
    assert [record["isSuppressed"] for record in put] == [False, True, False, False, False, False]


def test_an_empty_findings_page_puts_nothing(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response("list_audit_findings", {"findings": []}, expected_params())
    firehose = FakeFirehose(STREAM)

    collection = collect_task(TASK_ID, client, firehose)

    assert (collection.pages, collection.findings) == (1, 0)
    assert firehose.calls == []


# --- the handler: what is collected, skipped, or rejected ----------------------------------


def test_handler_collects_a_completed_non_compliant_audit(
    monkeypatch: pytest.MonkeyPatch,
    stubbed: tuple[Any, Stubber],
    capsys: pytest.CaptureFixture[str],
) -> None:
    client, stubber = stubbed
    queue_pages(stubber)
    firehose = FakeFirehose(STREAM)
    clients = Clients(monkeypatch, client, firehose)

    summary = run(load("sns_completed_scheduled_noncompliant.json"))

    stubber.assert_no_pending_responses()
    assert summary == {
        "results": [
            {
                "messageId": "0b8d1c52-7e43-5f0a-a1c6-3d9e2f4b8a71",
                "taskId": TASK_ID,
                "taskStatus": "COMPLETED",
                "outcome": "collected",
                "reason": None,
                "pages": 3,
                "findings": 6,
            }
        ],
        "findings": 6,
    }
    assert put_ids(firehose) == ALL_IDS
    assert (clients.iot_created, clients.firehose_created) == (1, 1)
    metrics = emf(capsys.readouterr().out)
    assert metrics["AuditFindingsCollected"] == 6.0
    assert metrics["AuditFindingPagesRead"] == 3.0
    assert metrics["AuditTasksCollected"] == 1.0
    assert metrics["AuditNotificationsSkipped"] == 0.0
    assert metrics["AuditNotificationsInvalid"] == 0.0
    assert metrics["AuditCollectionErrors"] == 0.0


@pytest.mark.parametrize(
    ("name", "task"),
    [
        # No count field: the auditDetails item alone says a check was non-compliant.
        ("sns_completed_noncompliant_details_only.json", "2b7c9d0e1f3a45b68d2e4c6a8f0b1d37"),
        # Checks that completed non-compliant before the task failed have real findings.
        ("sns_failed_audit.json", "c4e8a2f6b0d94173a5c7e9b1d3f50a82"),
        ("sns_canceled_audit.json", "f1a3c5e7092b4d6f8a0c2e4b6d8f1a3c"),
    ],
)
def test_handler_collects_every_finished_audit_with_a_non_compliant_check(
    monkeypatch: pytest.MonkeyPatch, stubbed: tuple[Any, Stubber], name: str, task: str
) -> None:
    client, stubber = stubbed
    page = {"findings": [dict(boto_page(3)["findings"][0], taskId=task)]}
    stubber.add_response("list_audit_findings", page, {"taskId": task, "maxResults": 250})
    firehose = FakeFirehose(STREAM)
    Clients(monkeypatch, client, firehose)

    summary = run(load(name))

    stubber.assert_no_pending_responses()
    assert summary["results"][0]["outcome"] == "collected"
    assert put_ids(firehose) == [ALL_FINDINGS[-1]["findingId"]]


@pytest.mark.parametrize(
    ("name", "status", "reason"),
    [
        (
            "sns_in_progress.json",
            "IN_PROGRESS",
            "audit task is IN_PROGRESS; findings are listed once it is CANCELED, COMPLETED, FAILED",
        ),
        (
            "sns_completed_on_demand_compliant.json",
            "COMPLETED",
            "audit COMPLETED with no non-compliant check",
        ),
    ],
)
def test_other_audits_are_skipped_without_any_api_call(
    *,
    monkeypatch: pytest.MonkeyPatch,
    stubbed: tuple[Any, Stubber],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    name: str,
    status: str,
    reason: str,
) -> None:
    client, stubber = stubbed  # nothing queued: any IoT call would raise
    firehose = FakeFirehose(STREAM)
    clients = Clients(monkeypatch, client, firehose)
    event = load(name)

    summary = run(event)

    stubber.assert_no_pending_responses()
    (result,) = summary["results"]
    assert result["outcome"] == "skipped"
    assert result["taskStatus"] == status
    assert result["reason"] == reason
    assert summary["findings"] == 0
    assert firehose.calls == []
    assert (clients.iot_created, clients.firehose_created) == (0, 0)  # not even created
    metrics = emf(capsys.readouterr().out)
    assert metrics["AuditNotificationsSkipped"] == 1.0
    assert metrics["AuditFindingsCollected"] == 0.0
    logged = next(r for r in caplog.records if r.getMessage() == "audit notification skipped")
    assert logged.reason == reason  # type: ignore[attr-defined]
    assert logged.task_id == json.loads(event["Records"][0]["Sns"]["Message"])["taskId"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("sns_not_json.json", "Message is not JSON"),
        ("sns_missing_task_id.json", "Message has no valid taskId (got None)"),
        ("sns_detect_violation_on_audit_topic.json", "Message has no valid taskId (got None)"),
    ],
)
def test_invalid_messages_are_logged_and_counted_not_raised(
    *,
    monkeypatch: pytest.MonkeyPatch,
    stubbed: tuple[Any, Stubber],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    name: str,
    reason: str,
) -> None:
    client, stubber = stubbed
    firehose = FakeFirehose(STREAM)
    clients = Clients(monkeypatch, client, firehose)
    event = load(name)

    summary = run(event)

    stubber.assert_no_pending_responses()
    (result,) = summary["results"]
    assert result["outcome"] == "invalid"
    assert result["messageId"] == event["Records"][0]["Sns"]["MessageId"]
    assert result["reason"].startswith(reason)
    assert (clients.iot_created, firehose.calls) == (0, [])
    assert emf(capsys.readouterr().out)["AuditNotificationsInvalid"] == 1.0
    logged = next(r for r in caplog.records if r.levelname == "ERROR")
    assert logged.getMessage() == "invalid audit notification, not collected"
    assert logged.reason.startswith(reason)  # type: ignore[attr-defined]
    assert logged.topic_arn == "arn:aws:sns:eu-west-1:123456789012:iot-defender-audit"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({}, "no Records list"),
        ({"Records": []}, "no Records list"),
        ({"Records": [{"EventSource": "aws:sqs", "body": "{}"}]}, "not an SNS notification"),
    ],
)
def test_events_that_are_not_sns_notifications_are_invalid(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    event: dict[str, Any],
    reason: str,
) -> None:
    clients = Clients(monkeypatch, None, None)

    summary = run(event)

    assert summary["findings"] == 0
    assert all(result["outcome"] == "invalid" for result in summary["results"])
    assert clients.iot_created == 0
    assert emf(capsys.readouterr().out)["AuditNotificationsInvalid"] == 1.0
    assert any(reason in str(getattr(r, "reason", "")) for r in caplog.records)


def test_each_record_of_an_event_is_handled(
    monkeypatch: pytest.MonkeyPatch, stubbed: tuple[Any, Stubber]
) -> None:
    client, stubber = stubbed
    queue_pages(stubber)
    firehose = FakeFirehose(STREAM)
    Clients(monkeypatch, client, firehose)
    event = load("sns_in_progress.json")
    event["Records"] += load("sns_completed_scheduled_noncompliant.json")["Records"]
    event["Records"] += load("sns_not_json.json")["Records"]

    summary = run(event)

    assert [r["outcome"] for r in summary["results"]] == ["skipped", "collected", "invalid"]
    assert summary["findings"] == 6
    assert put_ids(firehose) == ALL_IDS


# --- failures that must fail the invocation -------------------------------------------------


KEY = f"audit#{TASK_ID}"


def test_throttling_past_retries_ends_the_slice_at_its_checkpoint_and_the_next_resumes(
    monkeypatch: pytest.MonkeyPatch,
    stubbed: tuple[Any, Stubber],
    engine: Engine,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Stubber answers at "before-call", ahead of botocore's retry handler, so a stubbed
    # ThrottlingException is what the caller sees after retries are exhausted.
    client, stubber = stubbed
    stubber.add_response("list_audit_findings", boto_page(1), expected_params())
    stubber.add_client_error(
        "list_audit_findings",
        service_error_code="ThrottlingException",
        service_message="Rate exceeded",
        http_status_code=400,
        expected_params=expected_params(PAGES[0]["nextToken"]),
    )
    firehose = FakeFirehose(STREAM)
    Clients(monkeypatch, client, firehose)

    summary = run(load("sns_completed_scheduled_noncompliant.json"))

    stubber.assert_no_pending_responses()
    assert summary["results"][0]["outcome"] == "continued"
    assert put_ids(firehose) == [f["findingId"] for f in PAGES[0]["findings"]]  # page 1 stays put
    checkpoint = engine.checkpoint(KEY)
    assert checkpoint is not None
    assert (checkpoint.status, checkpoint.records, checkpoint.lease_expires_at) == ("running", 3, 0)
    assert checkpoint.cursor == {"token": PAGES[0]["nextToken"], "skip": 0}
    assert engine.invokes == [{"resume": KEY, "continued": True}]
    assert engine.functions == [CONTEXT.function_name]
    metrics = emf(capsys.readouterr().out)  # flushed although the slice ended early
    assert metrics["AuditCollectionErrors"] == 1.0
    assert metrics["AuditSlicesContinued"] == 1.0
    assert metrics["AuditTasksCollected"] == 0.0

    # The next slice lists from page 2 and puts the rest: every finding exactly once.
    stubber.add_response(
        "list_audit_findings", boto_page(2), expected_params(PAGES[0]["nextToken"])
    )
    stubber.add_response(
        "list_audit_findings", boto_page(3), expected_params(PAGES[1]["nextToken"])
    )
    resumed = run(engine.invokes[0])

    stubber.assert_no_pending_responses()
    assert resumed["results"][0]["outcome"] == "collected"
    assert put_ids(firehose) == ALL_IDS
    done = engine.checkpoint(KEY)
    assert done is not None
    assert (done.status, done.records, done.slices) == ("done", 6, 2)


def test_a_redelivered_notification_of_a_collected_task_puts_nothing(
    monkeypatch: pytest.MonkeyPatch,
    stubbed: tuple[Any, Stubber],
    capsys: pytest.CaptureFixture[str],
) -> None:
    client, stubber = stubbed
    queue_pages(stubber)  # one listing only: a second would find no stubbed response
    firehose = FakeFirehose(STREAM)
    Clients(monkeypatch, client, firehose)
    event = load("sns_completed_scheduled_noncompliant.json")

    first = run(event)
    capsys.readouterr()
    again = run(event)

    assert first["results"][0]["outcome"] == "collected"
    (result,) = again["results"]
    assert (result["outcome"], result["findings"]) == ("skipped", 0)
    assert "already collected in full" in result["reason"]
    assert put_ids(firehose) == ALL_IDS
    assert emf(capsys.readouterr().out)["AuditNotificationsDuplicate"] == 1.0


def test_a_notification_for_a_task_under_a_live_lease_puts_nothing(
    monkeypatch: pytest.MonkeyPatch, stubbed: tuple[Any, Stubber], engine: Engine
) -> None:
    client, _ = stubbed  # nothing queued: a listing would be a StubError
    firehose = FakeFirehose(STREAM)
    Clients(monkeypatch, client, firehose)
    engine.store.claim(KEY, "other-slice", lease_ms=300_000, max_slices=48, restart="never")

    summary = run(load("sns_completed_scheduled_noncompliant.json"))

    assert summary["results"][0]["outcome"] == "skipped"
    assert "being collected by other-slice" in summary["results"][0]["reason"]
    assert firehose.calls == []


def test_an_error_before_any_progress_fails_the_invocation_naming_the_checkpoint(
    monkeypatch: pytest.MonkeyPatch, stubbed: tuple[Any, Stubber], engine: Engine
) -> None:
    client, stubber = stubbed
    stubber.add_client_error(
        "list_audit_findings",
        service_error_code="AccessDeniedException",
        service_message="not authorized to perform: iot:ListAuditFindings",
        http_status_code=403,
        expected_params=expected_params(),
    )
    firehose = FakeFirehose(STREAM)
    Clients(monkeypatch, client, firehose)

    with pytest.raises(
        ExportStalledError, match=rf"made no progress; checkpoint {KEY}, cursor \{{\}}"
    ):
        run(load("sns_completed_scheduled_noncompliant.json"))

    stubber.assert_no_pending_responses()
    assert firehose.calls == []
    assert engine.invokes == []  # no loop: Lambda's retries, then the DLQ, take over


def test_a_resume_event_that_is_not_an_audit_key_is_invalid(
    monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    Clients(monkeypatch, None, None)
    summary = run({"resume": "inventory"})
    assert summary["results"][0]["outcome"] == "invalid"
    assert "is not audit#<taskId>" in summary["results"][0]["reason"]
    assert engine.table.writes == 0


class _Body:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


@pytest.fixture
def no_retry_waits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Real retries, without the real waiting; says which kind of wait was asked for.

    The adaptive rate limiter's token bucket refills by wall-clock time, so a stall of a second
    or two on a loaded machine would refill it and skip the rate-limit wait this fixture
    records. Its clock here moves one millisecond per reading, whatever the machine does.
    """
    waits: list[str] = []
    readings = itertools.count()

    def current_time(self: Any) -> float:
        return 1_000_000.0 + next(readings) / 1000

    def backoff(self: Any, context: Any) -> float:
        waits.append("backoff")
        return 0.0

    def bucket(self: Any, amount: Any) -> float:
        waits.append("rate-limit")
        return 0.0

    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", backoff)
    monkeypatch.setattr(botocore.retries.bucket.TokenBucket, "_sleep_amount", bucket)
    monkeypatch.setattr(botocore.retries.bucket.Clock, "current_time", current_time)
    return waits


def answer_with(throttles: int, sent: list[dict[str, Any]]) -> Callable[..., AWSResponse]:
    """A 'before-send' handler: ``throttles`` ThrottlingExceptions, then page 1 for ever."""

    def send(request: Any, **_: Any) -> AWSResponse:
        sent.append(json.loads(request.body))
        if len(sent) <= throttles:
            headers = HTTPHeaders.from_dict({"x-amzn-ErrorType": "ThrottlingException"})
            return AWSResponse(request.url, 400, headers, _Body(b'{"message":"Rate exceeded"}'))
        body = json.dumps({"findings": PAGES[0]["findings"]}).encode()
        headers = HTTPHeaders.from_dict({"content-type": "application/json"})
        return AWSResponse(request.url, 200, headers, _Body(body))

    return send


def test_the_iot_client_retries_throttling_adaptively(no_retry_waits: list[str]) -> None:
    client: Any = collect.delivery.iot_client(NO_DEADLINE)
    sent: list[dict[str, Any]] = []
    client.meta.events.register("before-send.iot.ListAuditFindings", answer_with(3, sent))
    firehose = FakeFirehose(STREAM)

    collection = collect_task(TASK_ID, client, firehose)

    assert client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 11}
    assert sent == [expected_params()] * 4  # three throttled attempts, then the page
    assert (collection.pages, collection.findings) == (1, 3)
    assert put_ids(firehose) == [f["findingId"] for f in PAGES[0]["findings"]]
    assert "backoff" in no_retry_waits
    assert "rate-limit" in no_retry_waits  # adaptive mode's client-side rate limiter engaged


def test_throttling_past_every_retry_fails_the_invocation(
    monkeypatch: pytest.MonkeyPatch, no_retry_waits: list[str]
) -> None:
    client: Any = collect.delivery.iot_client(NO_DEADLINE)
    sent: list[dict[str, Any]] = []
    client.meta.events.register("before-send.iot.ListAuditFindings", answer_with(100, sent))
    firehose = FakeFirehose(STREAM)
    Clients(monkeypatch, client, firehose)

    with pytest.raises(ExportStalledError, match="made no progress"):
        run(load("sns_completed_scheduled_noncompliant.json"))

    # With time enough, botocore makes its adaptive 1 + 10 attempts.
    assert len(sent) == 11
    assert firehose.calls == []


@pytest.mark.parametrize(
    # Reading stops 95 s before the end (5 s to log, 45 s to checkpoint and hand off, 45 s to
    # put the last batch); attempts take 15 s each, and botocore's backoff before retry i at
    # most min(2**(i-1), 20) + 5 s.
    ("seconds_left", "iot_attempts", "firehose_attempts"),
    [(900, 11, 11), (300, 7, 8), (60, 1, 1), (10, 1, 1)],
)
def test_the_clients_retry_only_as_often_as_the_time_left_allows(
    seconds_left: float, iot_attempts: int, firehose_attempts: int
) -> None:
    deadline = Deadline(ends_at=seconds_left, clock=lambda: 0.0)
    iot_client: Any = collect.delivery.iot_client(deadline)
    firehose: Any = collect.delivery.firehose_client(deadline)
    for client, attempts in ((iot_client, iot_attempts), (firehose, firehose_attempts)):
        assert client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": attempts}
        assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (3, 10)
        assert client.meta.region_name == REGION


def test_partially_rejected_batches_are_retried_until_all_are_put(
    monkeypatch: pytest.MonkeyPatch, stubbed: tuple[Any, Stubber], environment: list[float]
) -> None:
    client, stubber = stubbed
    queue_pages(stubber)
    rejected = ALL_IDS[1]
    firehose = FakeFirehose(STREAM, key=finding_id, failures={rejected: 2, ALL_IDS[4]: 1})
    Clients(monkeypatch, client, firehose)

    summary = run(load("sns_completed_scheduled_noncompliant.json"))

    assert summary["findings"] == 6
    assert sorted(put_ids(firehose)) == sorted(ALL_IDS)  # each accepted exactly once
    # One batch for the three pages; only the rejected entries were sent again.
    assert [[r["findingId"] for r in call] for call in firehose.call_documents] == [
        ALL_IDS,
        [rejected, ALL_IDS[4]],
        [rejected],
    ]
    assert len(environment) == 2  # one backoff per retry round, none really slept


def test_permanently_rejected_records_raise_delivery_error(
    monkeypatch: pytest.MonkeyPatch,
    stubbed: tuple[Any, Stubber],
    environment: list[float],
    capsys: pytest.CaptureFixture[str],
) -> None:
    client, stubber = stubbed
    queue_pages(stubber)
    firehose = FakeFirehose(STREAM, key=finding_id, failures={ALL_IDS[2]: 1000})
    Clients(monkeypatch, client, firehose)

    # The batch was not accepted whole, so the checkpoint did not move: the slice stalls.
    with pytest.raises(ExportStalledError, match="made no progress"):
        run(load("sns_completed_scheduled_noncompliant.json"))

    assert len(firehose.calls) == PUT_MAX_ATTEMPTS == 20  # the collectors' longer retries
    assert len(environment) == 19
    # Growing backoff, capped at 10 s: 0.2, 0.4, ... 6.4, then 10 s, each jittered to 50-100 %.
    assert 0.1 <= environment[0] <= 0.2
    assert all(5.0 <= wait <= 10.0 for wait in environment[6:])
    stubber.assert_no_pending_responses()
    metrics = emf(capsys.readouterr().out)
    assert metrics["AuditCollectionErrors"] == 1.0
    assert metrics["AuditFindingsCollected"] == 5.0  # what was accepted is counted


def test_a_missing_stream_name_fails_before_any_api_call(
    monkeypatch: pytest.MonkeyPatch, stubbed: tuple[Any, Stubber]
) -> None:
    client, _ = stubbed  # nothing queued: a ListAuditFindings call would be a StubError
    monkeypatch.delenv("DELIVERY_STREAM_NAME")
    Clients(monkeypatch, client, FakeFirehose(STREAM))

    with pytest.raises(DeliveryError, match="DELIVERY_STREAM_NAME is not set"):
        run(load("sns_completed_scheduled_noncompliant.json"))


# --- one finding never fails the run -------------------------------------------------------


def queue_pages_with(
    stubber: Stubber, index: int, change: Callable[[dict[str, Any]], None]
) -> None:
    """The three fixture pages, with finding ``index`` (of all six) changed by ``change``."""
    token = None
    position = 0
    for number in (1, 2, 3):
        page = boto_page(number)
        for finding in page["findings"]:
            if position == index:
                change(finding)
            position += 1
        stubber.add_response("list_audit_findings", page, expected_params(token))
        token = wire_page(number).get("nextToken")


def test_a_lone_surrogate_is_replaced_and_the_finding_put(
    monkeypatch: pytest.MonkeyPatch,
    stubbed: tuple[Any, Stubber],
    capsys: pytest.CaptureFixture[str],
    run_handler: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    # The CONFLICTING_CLIENT_IDS finding names a client id, which the device chose.
    client, stubber = stubbed
    conflicting = ALL_IDS.index("9a1c3e5f-7b2d-4f4a-8c6e-0b2d4f6a8c1e")

    def break_client_id(finding: dict[str, Any]) -> None:
        finding["nonCompliantResource"]["resourceIdentifier"]["clientId"] = "gw-berlin-03\udc80"

    queue_pages_with(stubber, conflicting, break_client_id)
    firehose = FakeFirehose(STREAM)
    Clients(monkeypatch, client, firehose)

    summary = run(load("sns_completed_scheduled_noncompliant.json"))

    assert summary["findings"] == 6
    assert put_ids(firehose) == ALL_IDS
    cleaned = firehose.documents[conflicting]["nonCompliantResource"]["resourceIdentifier"]
    assert cleaned["clientId"] == "gw-berlin-03\ufffd"
    metrics = emf(capsys.readouterr().out)
    assert (metrics["AuditFindingsCleaned"], metrics["AuditFindingsNotPut"]) == (1.0, 0.0)
    events = all_events(run_handler(firehose_event(firehose.accepted)))
    assert [event["sourcetype"] for event in events] == ["aws:iot:defender:audit:finding"] * 6


def test_a_finding_over_the_record_limit_is_sent_as_a_small_unparsed_record(
    monkeypatch: pytest.MonkeyPatch,
    stubbed: tuple[Any, Stubber],
    capsys: pytest.CaptureFixture[str],
    run_handler: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    client, stubber = stubbed

    def inflate(finding: dict[str, Any]) -> None:
        finding["nonCompliantResource"]["additionalInfo"] = {"DETAILS": "x" * 1_100_000}

    queue_pages_with(stubber, 2, inflate)
    firehose = FakeFirehose(STREAM)
    Clients(monkeypatch, client, firehose)

    summary = run(load("sns_completed_scheduled_noncompliant.json"))

    assert summary["results"][0]["outcome"] == "collected"
    assert summary["findings"] == 5
    assert [len(call) for call in firehose.calls] == [6]  # five findings and the stand-in
    stand_in = firehose.documents[2]
    assert stand_in == {
        "recordType": "aws:iot:collector:not-put",
        "schemaVersion": 1,
        "collector": "audit-findings-collector",
        "reasonCode": "record_too_large",
        "reason": stand_in["reason"],
        "item": {
            "taskId": TASK_ID,
            "findingId": ALL_IDS[2],
            "checkName": "DEVICE_CERTIFICATE_SHARED_CHECK",
            "severity": "CRITICAL",
            "resourceType": "DEVICE_CERTIFICATE",
        },
    }
    assert re.fullmatch(
        r"the item encodes to 1,10\d,\d{3} bytes, over .* it was not put", stand_in["reason"]
    )
    metrics = emf(capsys.readouterr().out)
    assert (metrics["AuditFindingsNotPut"], metrics["AuditFindingsCollected"]) == (1.0, 5.0)
    events = all_events(run_handler(firehose_event(firehose.accepted)))
    assert [event["sourcetype"] for event in events].count("aws:iot:defender:unparsed") == 1
    (unparsed,) = [e for e in events if e["sourcetype"] == "aws:iot:defender:unparsed"]
    assert unparsed["event"]["reason_code"] == "unknown_shape"
    assert json.loads(unparsed["event"]["payload"]) == stand_in


# --- end to end: moto Firehose to S3, then the real transform ------------------------------


def split_concatenated(data: bytes) -> list[bytes]:
    """Firehose's S3 objects are the records' bytes back to back: cut them at each object."""
    decoder = json.JSONDecoder()
    text = data.decode("utf-8")
    records: list[bytes] = []
    position = 0
    while position < len(text):
        _, end = decoder.raw_decode(text, position)
        records.append(text[position:end].encode("utf-8"))
        position = end
    return records


def test_end_to_end_through_moto_firehose_and_the_transform(
    monkeypatch: pytest.MonkeyPatch,
    stubbed: tuple[Any, Stubber],
    run_handler: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    client, stubber = stubbed
    queue_pages(stubber)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(
            Bucket="iot-defender-backup",
            CreateBucketConfiguration={"LocationConstraint": REGION},
        )
        firehose = boto3.client("firehose", region_name=REGION)
        firehose.create_delivery_stream(
            DeliveryStreamName=STREAM,
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/firehose-delivery",
                "BucketARN": "arn:aws:s3:::iot-defender-backup",
            },
        )
        Clients(monkeypatch, client, firehose)

        summary = run(load("sns_completed_scheduled_noncompliant.json"))

        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="iot-defender-backup")["Contents"]]
        objects = [s3.get_object(Bucket="iot-defender-backup", Key=key) for key in keys]
        landed = [record for obj in objects for record in split_concatenated(obj["Body"].read())]

    stubber.assert_no_pending_responses()
    assert summary["findings"] == 6
    assert len(keys) == 1  # one PutRecordBatch for the three pages, so one object
    landed_ids = [json.loads(record)["findingId"] for record in landed]
    assert sorted(landed_ids) == sorted(ALL_IDS)  # each finding exactly once
    assert len(set(landed_ids)) == len(landed_ids)

    hec = all_events(run_handler(firehose_event(landed)))

    assert [event["sourcetype"] for event in hec] == ["aws:iot:defender:audit:finding"] * 6
    by_id = {event["event"]["findingId"]: event for event in hec}
    expected = {
        "8f4c2a1e-5b7d-4e93-a0c6-2d8f1b3e5a79": (
            "DEVICE_CERTIFICATE_EXPIRING_CHECK",
            "MEDIUM",
            "DEVICE_CERTIFICATE",
            "a0c93e1f5d7b2e48c6a1f0d9b3e7c5a2d4f6b8e0c2a4d6f8b0e2c4a6d8f0b2e4",
            1795226413.208,
        ),
        "1b3d5f7a-9c2e-4a6b-8d0f-3e5a7c9b1d2f": (
            "DEVICE_CERTIFICATE_EXPIRING_CHECK",
            "MEDIUM",
            "DEVICE_CERTIFICATE",
            "5e7a9c1b3d5f7e9a1c3b5d7f9e1a3c5b7d9f1e3a5c7b9d1f3e5a7c9b1d3f5e7a",
            1795226413.216,
        ),
        "6e8a0c2d-4f6b-4d8e-b1a3-5c7e9f0b2d4a": (
            "DEVICE_CERTIFICATE_SHARED_CHECK",
            "CRITICAL",
            "DEVICE_CERTIFICATE",
            "c7e1a3f5b9d2c4e6a8f0b1d3e5c7a9f2b4d6e8a0c1f3b5d7e9a2c4f6b8d0e1a3",
            1795226412.941,
        ),
        "2c4e6a8b-0d1f-4b3c-9e5a-7f9b1c3d5e6f": (
            "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
            "CRITICAL",
            "IOT_POLICY",
            "fleet-telemetry-policy:3",
            1795226413.587,
        ),
        "9a1c3e5f-7b2d-4f4a-8c6e-0b2d4f6a8c1e": (
            "CONFLICTING_CLIENT_IDS_CHECK",
            "HIGH",
            "CLIENT_ID",
            "gw-berlin-03",
            1795226414.102,
        ),
        "4d6f8b0a-2e3c-4c5e-a7b9-1d3f5b7c9e0a": (
            "LOGGING_DISABLED_CHECK",
            "LOW",
            "ACCOUNT_SETTINGS",
            "123456789012",
            1795226412.53,
        ),
    }
    assert set(by_id) == set(expected)
    for finding_id, (check, severity, resource_type, resource_id, when) in expected.items():
        event = by_id[finding_id]
        assert event["fields"] == {
            "check_name": check,
            "severity": severity,
            "resource_type": resource_type,
            "task_id": TASK_ID,
        }
        assert event["event"]["resource_id"] == resource_id
        assert event["time"] == when
        assert event["event"]["taskStartTime"] == pytest.approx(1795226412.117)
        assert "time_fallback" not in event["event"]
    assert by_id["1b3d5f7a-9c2e-4a6b-8d0f-3e5a7c9b1d2f"]["event"]["isSuppressed"] is True


def test_boto_page_really_holds_datetimes() -> None:
    # Guards the fixtures' realism: the collector must encode what boto3 gives, not JSON numbers.
    finding = boto_page(1)["findings"][0]
    assert isinstance(finding["findingTime"], datetime)
    assert finding["findingTime"].timestamp() == pytest.approx(1795226413.208)
