"""Deadlines that fit the invocation: a stalled network ends a collector run with its log and
metrics written, before the Lambda timeout.

Real boto3 clients, as the collectors build them, answer through botocore's ``before-send``
event on a virtual clock (``tests.collector_time``): request signing, retries, backoff and the
deadline hooks all run, and no call reaches the network or waits for real.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from collect import audit_findings, delivery, inventory
from collect.checkpoint import ExportStalledError
from collect.deadline import (
    ATTEMPT_SECONDS,
    FLUSH_RESERVE_SECONDS,
    HANDOFF_RESERVE_SECONDS,
    LOG_RESERVE_SECONDS,
    attempts_within,
)
from tests.checkpoints import Engine
from tests.collector_time import VirtualHttp, collector_clock, hung, ok
from tests.fake_time import FakeTime
from tests.fakes import FakeFirehose
from tests.support import SAMPLES_DIR, FakeLambdaContext

STREAM = "iot-defender-splunk"
REGION = "eu-west-1"
TASK_ID = "5c1f0e9a3b7d42e8a6f4d2c19b8e7a30"
AUDIT = SAMPLES_DIR / "audit_collector"
INVENTORY = SAMPLES_DIR / "inventory_collector"
# Both functions' timeouts (sam/template.yaml) as the context reports them at the start.
AUDIT_CONTEXT = FakeLambdaContext(
    function_name="iot-defender-splunk-audit-findings", remaining_ms=300_000
)
INVENTORY_CONTEXT = FakeLambdaContext(
    function_name="iot-defender-splunk-inventory", remaining_ms=900_000
)
# Where the phases of a 300 s audit run end on the virtual clock (which starts at 1000).
AUDIT_END = 1300.0
AUDIT_HANDOFF_END = AUDIT_END - LOG_RESERVE_SECONDS
AUDIT_PUTS_END = AUDIT_HANDOFF_END - HANDOFF_RESERVE_SECONDS
AUDIT_READS_END = AUDIT_PUTS_END - FLUSH_RESERVE_SECONDS


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DELIVERY_STREAM_NAME", STREAM)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture
def time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    return collector_clock(monkeypatch)


@pytest.fixture
def engines(monkeypatch: pytest.MonkeyPatch, time: FakeTime) -> dict[str, Engine]:
    """Each collector's checkpoint table, its leases on the virtual clock."""
    now_ms = lambda: int(time.now * 1000)  # noqa: E731
    return {
        "audit": Engine(monkeypatch, audit_findings, now_ms),
        "inventory": Engine(monkeypatch, inventory, now_ms),
    }


def audit_event() -> Any:
    return json.loads((AUDIT / "sns" / "sns_completed_scheduled_noncompliant.json").read_text())


def findings_page(number: int) -> Any:
    """Page ``number`` of an endless listing: the fixture's first page with its own token."""
    page = json.loads((AUDIT / "api" / "list_audit_findings_page1.json").read_text())
    return {**page, "nextToken": f"page-{number + 1}"}


def endless_listing(latency: float, hang_from: int | None = None) -> list[Any]:
    """Answers for ListAuditFindings: pages for ever, or hung from page ``hang_from`` on."""
    pages = [ok(findings_page(n)) for n in range(1, 400)]
    return pages if hang_from is None else [*pages[: hang_from - 1], hung]


def emf(output: str) -> dict[str, float]:
    """Each metric of the one EMF document in captured stdout, by name."""
    (document,) = [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]
    return {name: value[0] for name, value in document.items() if isinstance(value, list)}


def stop_line(caplog: pytest.LogCaptureFixture) -> Any:
    (line,) = [
        r for r in caplog.records if "before the Lambda timeout: out of time" in r.getMessage()
    ]
    return line


def run_audit(monkeypatch: pytest.MonkeyPatch, http: VirtualHttp, sink: Any) -> Any:
    """The audit handler with its real IoT client on ``http``, putting into ``sink``."""
    monkeypatch.setattr(audit_findings, "iot_client", lambda d: http.attach(delivery.iot_client(d)))
    monkeypatch.setattr(audit_findings, "firehose_client", lambda _: sink)
    return audit_findings.lambda_handler(audit_event(), AUDIT_CONTEXT)


def test_a_slow_listing_stops_reading_in_time_to_put_checkpoint_log_and_emit_metrics(
    monkeypatch: pytest.MonkeyPatch,
    time: FakeTime,
    engines: dict[str, Engine],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Each page takes 20 s: page k starts at 1000 + 20 (k - 1) and may start only while it can
    # end (one attempt, 15 s) before reading stops at 1205, so page 10 (at 1180) is the last.
    http = VirtualHttp(time, endless_listing(latency=20.0), latency=20.0)
    sink = FakeFirehose(STREAM)

    summary = run_audit(monkeypatch, http, sink)

    assert summary["results"][0]["outcome"] == "continued"
    assert len(http.sent) == 10
    assert len(sink.accepted) == 10 * 3  # everything read was put, in one call
    assert len(sink.calls) == 1
    assert time.now <= AUDIT_PUTS_END
    line = stop_line(caplog)
    assert line.levelname == "WARNING"
    assert (line.pages, line.findings) == (10, 30)
    assert (line.listing_complete, line.next_token_pending) == (False, True)
    assert line.cursor == {"token": "page-11", "skip": 0}  # the next slice starts there
    engine = engines["audit"]
    assert engine.invokes == [{"resume": f"audit#{TASK_ID}", "continued": True}]
    metrics = emf(capsys.readouterr().out)
    assert metrics["AuditCollectionsStopped"] == 1.0
    assert metrics["AuditListingsUnfinished"] == 1.0
    assert metrics["AuditFindingPagesRead"] == 10.0
    assert metrics["AuditFindingsCollected"] == 30.0
    assert metrics["AuditCollectionErrors"] == 0.0
    assert metrics["AuditSlicesContinued"] == 1.0


def test_a_call_that_hangs_late_is_not_retried_past_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
    time: FakeTime,
    engines: dict[str, Engine],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Pages 1-7 take 20 s each; page 8 (at 1140) hangs: every attempt costs the 10 s read
    # timeout. Attempt 4 ends at 1187, and its retry (a backoff of up to 8 + 5 s, then 15 s)
    # could end at 1215, after reading must stop (1205): the call stops there.
    http = VirtualHttp(time, endless_listing(latency=20.0, hang_from=8), latency=20.0)
    sink = FakeFirehose(STREAM)

    summary = run_audit(monkeypatch, http, sink)

    assert summary["results"][0]["outcome"] == "continued"
    assert len(http.sent) == 7 + 4
    assert time.now == pytest.approx(1187.0)
    assert time.now + ATTEMPT_SECONDS <= AUDIT_PUTS_END  # the buffered batch could still go
    assert len(sink.accepted) == 7 * 3
    line = stop_line(caplog)
    assert line.pages == 7  # the hung page was never read: the next slice asks for it again
    assert re.search(
        r"ListAuditFindings failed \(Read timeout.*\) and no time is left", line.reason
    )
    assert line.cursor == {"token": "page-8", "skip": 0}
    assert emf(capsys.readouterr().out)["AuditCollectionsStopped"] == 1.0


def test_a_hung_put_record_batch_ends_the_run_before_the_function_timeout(
    monkeypatch: pytest.MonkeyPatch,
    time: FakeTime,
    engines: dict[str, Engine],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The inventory's 900 s; every PutRecordBatch attempt hangs. The first call makes all the
    # attempts its config allows; put_records then calls again while an attempt still fits,
    # and the deadline hooks cut the retries of the last calls short.
    http = VirtualHttp(time, [hung])
    firehose_client = delivery.firehose_client
    monkeypatch.setattr(delivery, "firehose_client", lambda d: http.attach(firehose_client(d)))
    iot = _FleetIndex()
    monkeypatch.setattr(inventory, "iot_client", lambda _: iot)
    puts_end = 1000 + 900 - LOG_RESERVE_SECONDS - HANDOFF_RESERVE_SECONDS

    # Nothing was put, so the checkpoint did not move: the export fails instead of looping.
    with pytest.raises(ExportStalledError, match="slice 1 made no progress; checkpoint inventory"):
        inventory.lambda_handler({}, INVENTORY_CONTEXT)

    assert time.now <= puts_end
    # It kept trying while a backoff and an attempt fitted.
    assert puts_end - time.now < delivery.PUT_MAX_DELAY + ATTEMPT_SECONDS
    assert len(http.sent) > attempts_within(puts_end - 1000)  # retried beyond one call
    line = stop_line(caplog)
    assert re.search(
        r"2 of 2 records were not accepted by Firehose .* before the deadline", line.reason
    )
    summary = line.summary
    assert summary["stopped_at_deadline"] is True
    assert (summary["pages"], summary["things_exported"], summary["listing_complete"]) == (
        1,
        0,
        False,
    )
    assert engines["inventory"].invokes == []
    metrics = emf(capsys.readouterr().out)
    assert metrics["InventoryRunsStopped"] == 1.0
    assert metrics["InventoryPagesRead"] == 1.0
    assert metrics["InventoryNextTokenPending"] == 0.0
    assert metrics["ThingsExported"] == 0.0


class _FleetIndex:
    """A fleet index of one page, three things, answered at once."""

    def get_indexing_configuration(self) -> Any:
        path = INVENTORY / "iot" / "get_indexing_configuration_registry_with_connectivity.json"
        return json.loads(path.read_text())

    def search_index(self, **_: Any) -> Any:
        path = INVENTORY / "iot" / "search_index_last_page.json"
        return json.loads(path.read_text())
