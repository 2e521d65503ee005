"""Exports that finish at fleet scale: self-continuing slices, each within its deadline.

Every run is on a virtual clock (``tests.collector_time``): the handler's deadline, the calls'
latencies and every backoff move ``FakeTime``, nothing waits. The scale proofs (a million
things, 250,000 findings) use the light fakes (``LightFleetIndex``, ``LightFindings``,
``CountingFirehose``, and ``LightCheckpointTable`` for every checkpoint GetItem and PutItem):
the same latency model and the same refusal of an attempt that could end after its phase,
without botocore, whose 14,000 calls would take minutes. The faults that depend on
botocore's retries and the deadline hooks (a hung call) use real boto3 clients on
``VirtualHttp`` at a smaller scale. Each test asserts the exact number of times every item was
put: {1: n} is every item once, no duplicate and no gap.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError

from collect import audit_findings, delivery, inventory
from collect.checkpoint import Checkpoint, ExportStalledError, checkpoint_store
from collect.continuation import continue_export
from collect.deadline import LOG_RESERVE_SECONDS, READ_TIMEOUT, Deadline, OutOfTimeError
from tests.checkpoints import Engine, FakeTable
from tests.collector_time import (
    CHECKPOINT_LATENCY,
    CountingFirehose,
    Killed,
    LightCheckpointTable,
    LightFindings,
    LightFleetIndex,
    VirtualHttp,
    collector_clock,
    hung,
    table_answer,
)
from tests.fake_time import FakeTime
from tests.support import SAMPLES_DIR, FakeLambdaContext

STREAM = "iot-defender-splunk"
TASK_ID = "5c1f0e9a3b7d42e8a6f4d2c19b8e7a30"
AUDIT_KEY = f"audit#{TASK_ID}"
AUDIT = SAMPLES_DIR / "audit_collector"
FINDING = json.loads((AUDIT / "api" / "list_audit_findings_page1.json").read_text())["findings"][0]
SCHEDULE = json.loads(
    (
        SAMPLES_DIR / "inventory_collector" / "eventbridge" / "hourly_scheduled_event.json"
    ).read_text()
)
NOTIFICATION = json.loads((AUDIT / "sns" / "sns_completed_scheduled_noncompliant.json").read_text())
# The functions' timeouts (sam/template.yaml).
INVENTORY_TIMEOUT = 900
AUDIT_TIMEOUT = 300
# The measured runs: SearchIndex 80 ms, PutRecordBatch 30 ms; ListAuditFindings pages
# were killed near page 780 of 1,000 in 300 s, about 0.35 s a page.
SEARCH_LATENCY = 0.08
FINDINGS_LATENCY = 0.35
SCALE_THINGS = 1_000_000


def thing_number(record: dict[str, Any]) -> int | None:
    thing = record.get("thing")
    return int(thing["thingName"].removeprefix("thing-")) if thing else None


def finding_number(record: dict[str, Any]) -> int | None:
    finding_id = record.get("findingId")
    return int(finding_id.removeprefix("f-")) if finding_id else None


@dataclass
class Export:
    """A collector's handler, invoked slice after slice as Lambda would run its continuations."""

    time: FakeTime
    engine: Engine
    handler: Callable[[Any, Any], Any]
    function_name: str
    timeout: int
    durations: list[float] = field(default_factory=list)

    def invoke(self, event: Any, request_id: str | None = None) -> Any:
        """One invocation (the function's whole timeout), timed on the clock.

        ``request_id`` is new for each invocation unless given: Lambda's retry of a failed
        event keeps the failed attempt's.
        """
        start = self.time.now
        context = FakeLambdaContext(
            function_name=self.function_name,
            aws_request_id=request_id or f"request-{len(self.durations) + 1}",
            remaining_ms=self.timeout * 1000,
        )
        try:
            return self.handler(event, context)
        finally:
            self.durations.append(self.time.now - start)

    def until_done(self, event: Any, request_id: str | None = None) -> int:
        """Run ``event`` and every continuation it leads to; the number of slices."""
        slices = 0
        next_event: Any = event
        while next_event is not None:
            slices += 1
            self.invoke(next_event, request_id if slices == 1 else None)
            self.time.now += 1.0  # an asynchronous invoke waits in Lambda's queue
            next_event = self.engine.next_event()
        return slices

    def within_deadlines(self) -> bool:
        """Every slice returned with its log reserve left: its metrics and log were written."""
        return all(spent <= self.timeout - LOG_RESERVE_SECONDS for spent in self.durations)


@pytest.fixture
def time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    clock = collector_clock(monkeypatch)
    monkeypatch.setenv("DELIVERY_STREAM_NAME", STREAM)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return clock


def timed_engine(monkeypatch: pytest.MonkeyPatch, module: Any, time: FakeTime) -> Engine:
    """``module``'s checkpoint table, each GetItem and PutItem costing its round trip on
    ``time`` and refused past the hand-off's end (the real store's client phase)."""
    table = FakeTable()
    light = LightCheckpointTable(time, table)
    now_ms = lambda: int(time.now * 1000)  # noqa: E731
    return Engine(monkeypatch, module, now_ms, table, lambda d: light.bound(d.handoff_end))


def inventory_export(
    monkeypatch: pytest.MonkeyPatch, time: FakeTime, fleet: LightFleetIndex, sink: Any
) -> Export:
    engine = timed_engine(monkeypatch, inventory, time)
    monkeypatch.setattr(inventory, "iot_client", lambda d: fleet.bound(d.reads_end))
    monkeypatch.setattr(delivery, "firehose_client", lambda d: sink.bound(d.puts_end))
    name = "iot-defender-splunk-inventory"
    return Export(time, engine, inventory.lambda_handler, name, INVENTORY_TIMEOUT)


def audit_export(
    monkeypatch: pytest.MonkeyPatch,
    time: FakeTime,
    iot: LightFindings | Callable[[Deadline], Any],
    sink: Any,
    engine: Engine | None = None,
) -> Export:
    """The audit handler on ``iot`` (light, or a factory of real clients), into ``sink``;
    its checkpoints in ``engine``, by default the light table."""
    engine = engine or timed_engine(monkeypatch, audit_findings, time)
    factory = (lambda d: iot.bound(d.reads_end)) if isinstance(iot, LightFindings) else iot
    monkeypatch.setattr(audit_findings, "iot_client", factory)
    monkeypatch.setattr(audit_findings, "firehose_client", lambda d: sink.bound(d.puts_end))
    name = "iot-defender-splunk-audit-findings"
    return Export(time, engine, audit_findings.lambda_handler, name, AUDIT_TIMEOUT)


def findings(
    time: FakeTime, size: int, latency: float = FINDINGS_LATENCY, **options: Any
) -> LightFindings:
    return LightFindings(time, size, finding=FINDING, latency=latency, **options)


def throttled(operation: str) -> ClientError:
    """What a call raises once botocore's retries of a throttled call are spent."""
    error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
    return ClientError(error, operation)  # type: ignore[arg-type]


# --- the scale proofs ----------------------------------------------------------------------


def test_a_million_things_are_exported_once_each_across_slices_within_their_deadlines(
    monkeypatch: pytest.MonkeyPatch, time: FakeTime
) -> None:
    # 10,000 SearchIndex pages (800 s), 2,001 PutRecordBatch calls (60 s) and a checkpoint
    # save after each (16 s at 8 ms): more than one 900 s invocation can do once it keeps
    # 95 s to put, checkpoint, hand off and log.
    size = SCALE_THINGS
    fleet = LightFleetIndex(time, size, latency=SEARCH_LATENCY)
    sink = CountingFirehose(time, size, thing_number)
    export = inventory_export(monkeypatch, time, fleet, sink)

    export.invoke(SCHEDULE)
    first_slice = export.engine.checkpoint("inventory")
    slices = 1 + export.until_done(export.engine.next_event())

    assert sink.counts() == {1: size}
    assert slices == 2
    assert export.within_deadlines()
    # The saves' time is spent in the slice: at zero latency slice 1 got to 918,700 things.
    assert first_slice is not None
    assert first_slice.records == 901_900
    assert export.engine.table.writes == 2_005  # 2,001 saves, 2 claims, a release, a finish
    assert fleet.calls == size // 100  # a slice stops before a call, so no page is read twice
    assert sink.calls == size // 500 + 1  # the first slice's last batch was not full
    checkpoint = export.engine.checkpoint("inventory")
    assert checkpoint is not None
    assert (checkpoint.status, checkpoint.records, checkpoint.slices) == ("done", size, 2)


def test_250k_findings_are_put_once_each_across_slices_within_their_deadlines(
    monkeypatch: pytest.MonkeyPatch, time: FakeTime
) -> None:
    size = 250_000
    sink = CountingFirehose(time, size, finding_number)
    export = audit_export(monkeypatch, time, findings(time, size), sink)

    export.invoke(NOTIFICATION)
    first_slice = export.engine.checkpoint(AUDIT_KEY)
    slices = 1 + export.until_done(export.engine.next_event())

    assert sink.counts() == {1: size}
    assert slices == 2
    assert export.within_deadlines()
    # 8 ms a save: slice 1 ended at 128,750 findings (130,250 at zero latency).
    assert first_slice is not None
    assert first_slice.records == 128_750
    assert export.engine.table.writes == 505  # 501 saves, 2 claims, a release, a finish
    assert_audit_done(export, size)


def assert_audit_done(export: Export, records: int) -> None:
    """The audit's checkpoint says done, with every record counted once."""
    checkpoint = export.engine.checkpoint(AUDIT_KEY)
    assert checkpoint is not None
    assert (checkpoint.status, checkpoint.records) == ("done", records)


# --- faults, each with exact counts ---------------------------------------------------------


def test_throttling_mid_way_ends_the_slice_and_the_next_puts_the_rest_once(
    monkeypatch: pytest.MonkeyPatch, time: FakeTime
) -> None:
    size = 50_000  # 200 pages; page 120 is throttled past every retry
    iot = findings(time, size, fail_at={120: throttled("ListAuditFindings")})
    sink = CountingFirehose(time, size, finding_number)
    export = audit_export(monkeypatch, time, iot, sink)

    slices = export.until_done(NOTIFICATION)

    assert sink.counts() == {1: size}
    assert slices == 2
    assert iot.calls == 201  # the throttled page asked for once more, by the next slice


def test_search_index_throttled_mid_way_ends_the_slice_and_the_next_resumes_it(
    monkeypatch: pytest.MonkeyPatch, time: FakeTime
) -> None:
    size = 30_000
    fleet = LightFleetIndex(time, size, fail_at={150: throttled("SearchIndex")})
    sink = CountingFirehose(time, size, thing_number)
    export = inventory_export(monkeypatch, time, fleet, sink)

    assert export.until_done(SCHEDULE) == 2
    assert sink.counts() == {1: size}


def test_one_oversized_and_one_malformed_finding_cost_nothing_else(
    monkeypatch: pytest.MonkeyPatch, time: FakeTime
) -> None:
    size = 10_000

    def inflate(finding: dict[str, Any]) -> None:
        finding["nonCompliantResource"]["additionalInfo"] = {"DETAILS": "x" * 1_100_000}

    def lone_surrogate(finding: dict[str, Any]) -> None:
        finding["nonCompliantResource"]["resourceIdentifier"] = {"clientId": "gw-03\udc80"}

    iot = findings(time, size, change={1234: inflate, 4321: lone_surrogate})
    sink = CountingFirehose(time, size, finding_number)
    export = audit_export(monkeypatch, time, iot, sink)

    assert export.until_done(NOTIFICATION) == 1

    assert sink.counts() == {1: size - 1, 0: 1}
    assert sink.accepted[1234] == 0
    (stand_in,) = sink.others
    assert stand_in["recordType"] == "aws:iot:collector:not-put"
    assert stand_in["item"]["findingId"] == "f-0001234"
    checkpoint = export.engine.checkpoint(AUDIT_KEY)
    assert checkpoint is not None
    assert checkpoint.records == size  # 9,999 findings and the stand-in


def test_sns_redelivery_during_and_after_the_collection_puts_nothing_twice(
    monkeypatch: pytest.MonkeyPatch, time: FakeTime
) -> None:
    size = 50_000  # 200 pages of a slow listing (1 s a page): two slices
    sink = CountingFirehose(time, size, finding_number)
    export = audit_export(monkeypatch, time, findings(time, size, latency=1.0), sink)

    export.invoke(NOTIFICATION)  # slice 1, handed off
    redelivered = export.invoke(NOTIFICATION)  # SNS again, before the continuation ran
    continuation = export.engine.next_event()
    late = export.invoke(continuation)  # the continuation: the task was finished meanwhile
    after = export.invoke(NOTIFICATION)  # and SNS once more, long after

    assert sink.counts() == {1: size}
    assert redelivered["results"][0]["outcome"] == "collected"  # resumed at the cursor
    assert late["results"][0]["outcome"] == "skipped"
    assert after["results"][0]["outcome"] == "skipped"
    assert "already collected in full" in after["results"][0]["reason"]


@pytest.mark.parametrize("batch", [1, 17, 40])
def test_a_slice_killed_mid_way_is_resumed_and_re_puts_only_the_batch_in_flight(
    monkeypatch: pytest.MonkeyPatch, time: FakeTime, batch: int
) -> None:
    size = 20_000
    fleet = LightFleetIndex(time, size)
    sink = CountingFirehose(time, size, thing_number)
    sink.kill_on = batch  # accepted by Firehose, then the invocation ends
    export = inventory_export(monkeypatch, time, fleet, sink)

    started = time.now
    with pytest.raises(Killed):
        export.invoke(SCHEDULE)
    in_flight = sink.last_batch
    # While the dead slice's lease lasts, the schedule puts nothing; after it, the run resumes.
    assert export.invoke(SCHEDULE)["outcome"] == "skipped"
    time.now = started + INVENTORY_TIMEOUT + 6  # the lease: the slice's timeout, and 5 s
    slices = export.until_done(SCHEDULE)

    assert in_flight == 500
    assert sink.counts() == {1: size - in_flight, 2: in_flight}
    assert slices == 1


def test_an_audit_slice_killed_mid_way_is_resumed_by_lambdas_retry(
    monkeypatch: pytest.MonkeyPatch, time: FakeTime
) -> None:
    size = 20_000
    sink = CountingFirehose(time, size, finding_number)
    sink.kill_on = 7
    export = audit_export(monkeypatch, time, findings(time, size), sink)

    with pytest.raises(Killed):  # e.g. out of memory: the lease is still live
        export.invoke(NOTIFICATION, request_id="sns-delivery-1")
    time.now += 60  # Lambda retries the event a minute later, under the same request id
    export.until_done(NOTIFICATION, request_id="sns-delivery-1")

    assert sink.counts() == {1: size - 500, 2: 500}


def test_a_hung_call_ends_the_slice_and_the_next_slice_resumes_with_real_clients(
    monkeypatch: pytest.MonkeyPatch, time: FakeTime
) -> None:
    """Real boto3 IoT client (retries, the deadline hooks) on the virtual HTTP layer."""
    pages = 40

    def answer(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        number = int(request.get("nextToken", "page-1").removeprefix("page-"))
        if number == 25 and not export.durations:
            return hung(request)  # every attempt of the first slice
        start = (number - 1) * 3
        page = [{**FINDING, "findingId": f"f-{n:07d}"} for n in range(start, start + 3)]
        more = {"nextToken": f"page-{number + 1}"} if number < pages else {}
        return 200, {"findings": page, **more}

    http = VirtualHttp(time, [answer], latency=8.0)
    sink = CountingFirehose(time, pages * 3, finding_number)
    export = audit_export(monkeypatch, time, lambda d: http.attach(delivery.iot_client(d)), sink)

    slices = export.until_done(NOTIFICATION)

    assert sink.counts() == {1: pages * 3}
    assert slices == 2
    assert export.within_deadlines()


def test_a_hung_checkpoint_save_ends_the_slice_and_lambdas_retry_re_puts_only_its_batch(
    monkeypatch: pytest.MonkeyPatch, time: FakeTime
) -> None:
    """Real boto3 DynamoDB client (``collect.checkpoint.checkpoint_store``: its retries and
    deadline hooks) on the virtual HTTP layer, in front of ``FakeTable``.

    From the third save on, DynamoDB answers nothing in the first slice: every attempt costs
    its read timeout until no attempt fits before the hand-off's end. The slice puts no batch
    after the one whose save hung, raises before its timeout (its release cannot be written
    either), and Lambda's retry of the event takes its own lease over and re-puts only that
    batch: Firehose got it, the checkpoint never did.
    """
    size = 5_000  # 20 pages, 10 batches
    table = FakeTable()
    landed_before_the_hang = 3  # the claim and two saves

    def answer(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        in_slice_1 = not export.durations
        if in_slice_1 and "Item" in request and table.writes == landed_before_the_hang:
            return hung(request)
        return table_answer(table, request)

    http = VirtualHttp(time, [answer], latency=CHECKPOINT_LATENCY)
    sink = CountingFirehose(time, size, finding_number)
    real_client = lambda d: http.attach(checkpoint_store(d).client)  # noqa: E731
    engine = Engine(monkeypatch, audit_findings, lambda: int(time.now * 1000), table, real_client)
    export = audit_export(monkeypatch, time, findings(time, size), sink, engine)

    with pytest.raises(OutOfTimeError):
        export.invoke(NOTIFICATION, request_id="sns-delivery-1")
    put_in_slice_1 = sum(sink.accepted)
    time.now += 60  # Lambda retries the failed event a minute later, same request id
    export.until_done(NOTIFICATION, request_id="sns-delivery-1")

    assert put_in_slice_1 == 1_500  # the batch whose save hung was the last one put
    assert sink.counts() == {1: size - 500, 2: 500}
    assert export.within_deadlines()
    checkpoint = export.engine.checkpoint(AUDIT_KEY)
    assert checkpoint is not None
    assert (checkpoint.status, checkpoint.records, checkpoint.owner) == (
        "done",
        size,
        "sns-delivery-1",
    )


def test_a_checkpoint_save_that_landed_but_whose_answer_was_lost_lets_the_slice_go_on(
    monkeypatch: pytest.MonkeyPatch, time: FakeTime
) -> None:
    """The third save reaches DynamoDB, its answer never comes: botocore retries it after the
    read timeout, and the retry fails the revision condition the first attempt moved on. The
    slice knows its own write and goes on: the export finishes in one slice, each once."""
    size = 5_000
    table = FakeTable()

    def answer(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if "Item" in request and table.writes == 3:  # the claim and two saves landed
            table_answer(table, request)  # applied (a fourth write), and the answer is lost
            return hung(request)
        return table_answer(table, request)

    http = VirtualHttp(time, [answer], latency=CHECKPOINT_LATENCY)
    sink = CountingFirehose(time, size, finding_number)
    real_client = lambda d: http.attach(checkpoint_store(d).client)  # noqa: E731
    engine = Engine(monkeypatch, audit_findings, lambda: int(time.now * 1000), table, real_client)
    export = audit_export(monkeypatch, time, findings(time, size), sink, engine)

    slices = export.until_done(NOTIFICATION)

    assert sink.counts() == {1: size}
    assert slices == 1
    assert export.durations[0] > READ_TIMEOUT  # the lost answer cost its read timeout
    assert_audit_done(export, size)


# --- the guard rails -------------------------------------------------------------------------


def test_an_export_that_keeps_failing_stops_at_max_slices_naming_its_cursor(
    monkeypatch: pytest.MonkeyPatch, time: FakeTime
) -> None:
    monkeypatch.setenv("MAX_SLICES", "3")
    size = 10_000
    # Every slice reads three pages, then the fourth page it asks for is throttled.
    failures = {n: throttled("SearchIndex") for n in range(4, 400, 4)}
    fleet = LightFleetIndex(time, size, fail_at=failures)
    sink = CountingFirehose(time, size, thing_number)
    export = inventory_export(monkeypatch, time, fleet, sink)

    with pytest.raises(
        ExportStalledError, match=r"used all 3 slices; checkpoint inventory, cursor"
    ):
        export.until_done(SCHEDULE)

    assert sink.counts() == {1: 900, 0: size - 900}  # three slices of three pages
    assert export.engine.invokes == []  # no fourth slice
    checkpoint = export.engine.checkpoint("inventory")
    assert checkpoint is not None
    assert (checkpoint.cursor["token"], checkpoint.cursor["skip"]) == ("900", 0)

    # An operator's {"resume": "inventory"} grants new slices and finishes the export.
    monkeypatch.setenv("MAX_SLICES", "48")
    fleet.fail_at.clear()
    export.until_done({"resume": "inventory"})
    assert sink.counts() == {1: size}


def test_a_slice_that_made_no_progress_does_not_continue(time: FakeTime) -> None:
    checkpoint = Checkpoint(
        "inventory", "request-1", cursor={"token": "7"}, slices=2, slice_limit=9
    )
    invoked: list[Any] = []

    class Lambda:
        def invoke(self, **request: Any) -> None:
            invoked.append(request)

    with pytest.raises(ExportStalledError, match=r"slice 2 made no progress.*\"token\": \"7\""):
        continue_export(Lambda(), "fn", checkpoint, {"token": "7"})  # type: ignore[arg-type]
    continue_export(Lambda(), "fn", checkpoint, {"token": "6"})  # type: ignore[arg-type]
    assert [json.loads(r["Payload"]) for r in invoked] == [
        {"resume": "inventory", "continued": True}
    ]
    assert invoked[0]["InvocationType"] == "Event"
