"""Collector runs on a virtual clock: Firehose backoff and botocore's HTTP layer without waiting.

Shared by the collector tests. ``record_put_waits`` makes every ``put_records`` backoff a
recorded number instead of a sleep; ``VirtualHttp`` answers a real boto3 client's requests at
botocore's ``before-send`` event, moving a ``FakeTime`` by each answer's latency, so deadlines
are tested with the real retry logic and no network or real time.

For fleet-scale runs (a million things: 14,000 calls) botocore itself is the cost, so
``LightFleetIndex``, ``LightFindings``, ``CountingFirehose`` and ``LightCheckpointTable`` (the
checkpoint table's GetItem and PutItem, on a ``tests.checkpoints.FakeTable``) answer the calls
directly, with the same latency model on the same clock, and refuse an attempt that could end
after its phase's end exactly as ``collect.deadline.guard_client`` makes a real client do
(``OutOfTimeError``). ``Killed`` stands for Lambda ending the process at its timeout.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import botocore.retries.standard
import orjson
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ClientError, ReadTimeoutError

from collect import audit_findings, delivery, inventory
from collect.deadline import ATTEMPT_SECONDS, READ_TIMEOUT, Deadline, OutOfTimeError
from shared.firehose import put_records
from tests.checkpoints import FakeTable
from tests.fake_time import FakeTime

__all__ = [
    "CHECKPOINT_LATENCY",
    "Answer",
    "CountingFirehose",
    "Killed",
    "LightCheckpointTable",
    "LightFindings",
    "LightFleetIndex",
    "VirtualHttp",
    "hung",
    "ok",
    "record_put_waits",
    "table_answer",
    "virtual_backoff",
    "virtual_deadlines",
]

Answer = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]
# A consistent GetItem or a conditional PutItem of one small item, from Lambda to an on-demand
# table in its region: a few ms of service time plus the HTTPS round trip.
CHECKPOINT_LATENCY = 0.008


def record_put_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every backoff ``put_records`` asks for, recorded and not slept, whatever the caller says."""
    waits: list[float] = []

    def recording(*args: Any, **kwargs: Any) -> list[int]:
        return put_records(*args, **{**kwargs, "sleep": waits.append})

    monkeypatch.setattr(delivery, "put_records", recording)
    return waits


def virtual_backoff(monkeypatch: pytest.MonkeyPatch, time: FakeTime) -> None:
    """botocore's retry backoff spent on the virtual clock (its longest: no jitter luck)."""

    def delay(self: Any, context: Any) -> float:
        time.sleep(float(min(2 ** (context.attempt_number - 1), 20)))
        return 0.0

    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", delay)


class _Body:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def ok(document: dict[str, Any]) -> Answer:
    """Answer every request with ``document`` (HTTP 200)."""
    return lambda _request: (200, document)


class _HangError(Exception):
    pass


def hung(_request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A call whose answer never comes: the read timeout fires."""
    raise _HangError


class VirtualHttp:
    """A real client's HTTP layer: ``answers`` in order (the last repeats), each ``latency`` s.

    A hung answer costs the client's read timeout on the clock. ``sent`` keeps every request
    body (JSON) that reached the network.
    """

    def __init__(self, time: FakeTime, answers: list[Answer], latency: float = 0.08) -> None:
        self.time = time
        self.answers = answers
        self.latency = latency
        self.sent: list[dict[str, Any]] = []

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-send", self.send)
        return client

    def send(self, request: Any, **_: Any) -> AWSResponse:
        body = json.loads(request.body) if request.body else {}
        self.sent.append(body)
        answer = self.answers[min(len(self.sent), len(self.answers)) - 1]
        try:
            status, document = answer(body)
        except _HangError:
            self.time.now += READ_TIMEOUT
            raise ReadTimeoutError(endpoint_url=request.url) from None
        self.time.now += self.latency
        headers = HTTPHeaders.from_dict({"content-type": "application/x-amz-json-1.1"})
        return AWSResponse(request.url, status, headers, _Body(json.dumps(document).encode()))


def virtual_deadlines(monkeypatch: pytest.MonkeyPatch, module: Any, time: FakeTime) -> None:
    """Make ``module``'s handler read the invocation's end on ``time``, and back off on it."""

    class VirtualDeadline(Deadline):
        @classmethod
        def from_context(cls, context: Any, clock: Any = None, sleep: Any = None) -> Deadline:
            return Deadline.from_context(context, time.clock, time.sleep)

    monkeypatch.setattr(module, "Deadline", VirtualDeadline)


class Killed(BaseException):  # not an Exception: the code under test must not handle it
    """Lambda ended the invocation: nothing after this point of the slice runs."""


class _Latency:
    """Each call costs ``latency`` on ``time``; none starts that could end after ``end``."""

    def __init__(self, time: FakeTime, latency: float) -> None:
        self.time = time
        self.latency = latency
        self.end = float("inf")
        self.calls = 0

    def bound(self, end: float) -> Any:
        """This client, its calls ending by ``end`` (as the collector's factory would build it)."""
        self.end = end
        return self

    def _attempt(self) -> None:
        if self.time.now + ATTEMPT_SECONDS > self.end:
            raise OutOfTimeError("no time left for another attempt of this call")
        self.calls += 1
        self.time.now += self.latency


class LightFleetIndex(_Latency):
    """A fleet index of ``size`` things, ``thing-0000000`` on, 100 to a SearchIndex page.

    ``fail_at`` maps a call number (1-based) to what that call raises instead of answering.
    """

    def __init__(
        self,
        time: FakeTime,
        size: int,
        latency: float = 0.08,
        fail_at: dict[int, Any] | None = None,
    ) -> None:
        super().__init__(time, latency)
        self.size = size
        self.fail_at = fail_at or {}

    def get_indexing_configuration(self) -> Any:
        return {"thingIndexingConfiguration": {"thingIndexingMode": "REGISTRY"}}

    def search_index(self, *, maxResults: int, nextToken: str = "0", **_: Any) -> Any:  # noqa: N803
        self._attempt()
        if self.calls in self.fail_at:
            raise self.fail_at.pop(self.calls)
        start = int(nextToken)
        end = min(start + maxResults, self.size)
        things = [{"thingName": f"thing-{n:07d}", "thingId": f"id-{n}"} for n in range(start, end)]
        return {"things": things, **({"nextToken": str(end)} if end < self.size else {})}


class LightFindings(_Latency):
    """One audit task's ``size`` findings (``finding`` with ids ``f-0000000`` on), 250 a page.

    ``change`` maps a finding number to a function that alters that finding (an oversized or
    malformed item); ``fail_at`` as for ``LightFleetIndex``.
    """

    def __init__(
        self,
        time: FakeTime,
        size: int,
        *,
        finding: dict[str, Any],
        latency: float,
        change: dict[int, Callable[[dict[str, Any]], None]] | None = None,
        fail_at: dict[int, Any] | None = None,
    ) -> None:
        super().__init__(time, latency)
        self.size = size
        self.finding = finding
        self.change = change or {}
        self.fail_at = fail_at or {}

    def list_audit_findings(self, **request: Any) -> Any:
        self._attempt()
        if self.calls in self.fail_at:
            raise self.fail_at.pop(self.calls)
        task_id, start = request["taskId"], int(request.get("nextToken", 0))
        end = min(start + request["maxResults"], self.size)
        findings = []
        for n in range(start, end):
            finding = {**self.finding, "taskId": task_id, "findingId": f"f-{n:07d}"}
            if n in self.change:
                finding = json.loads(json.dumps(finding))
                self.change[n](finding)
            findings.append(finding)
        return {"findings": findings, **({"nextToken": str(end)} if end < self.size else {})}


class CountingFirehose(_Latency):
    """PutRecordBatch that counts how often each item (by ``number`` of a record) was accepted.

    ``kill_on`` (a call number) ends the invocation right after that call's records were
    accepted: the worst moment, before the collector could save its checkpoint.
    """

    def __init__(
        self,
        time: FakeTime,
        size: int,
        number: Callable[[dict[str, Any]], int | None],
        latency: float = 0.03,
    ) -> None:
        super().__init__(time, latency)
        self.accepted = bytearray(size)
        self.number = number
        self.others: list[dict[str, Any]] = []  # records that are no item (stand-ins)
        self.kill_on: int | None = None
        self.last_batch = 0

    def put_record_batch(self, *, DeliveryStreamName: str, Records: Any) -> Any:  # noqa: N803
        self._attempt()
        for record in Records:
            document = orjson.loads(record["Data"])
            number = self.number(document)
            if number is None:
                self.others.append(document)
            else:
                self.accepted[number] += 1
        self.last_batch = len(Records)
        if self.calls == self.kill_on:
            raise Killed
        return {"FailedPutCount": 0, "RequestResponses": [{"RecordId": "r"} for _ in Records]}

    def counts(self) -> dict[int, int]:
        """How many items were accepted how many times: {1: n} is each exactly once."""
        return dict(Counter(self.accepted))


class LightCheckpointTable(_Latency):
    """The checkpoint store's calls on ``table``, each a round trip of ``latency`` on the clock.

    Bound to its phase's end like the other light clients: a save that could end after it is
    refused (``OutOfTimeError``), as ``guard_client`` makes the real DynamoDB client do.
    """

    def __init__(self, time: FakeTime, table: FakeTable, latency: float = CHECKPOINT_LATENCY):
        super().__init__(time, latency)
        self.table = table

    def get_item(self, **request: Any) -> Any:
        self._attempt()
        return self.table.get_item(**request)

    def put_item(self, **request: Any) -> Any:
        self._attempt()
        return self.table.put_item(**request)


def table_answer(table: FakeTable, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """DynamoDB's answer to a checkpoint GetItem or PutItem (``VirtualHttp``), from ``table``."""
    try:
        return 200, table.put_item(**request) if "Item" in request else table.get_item(**request)
    except ClientError as refused:
        answer: Any = refused.response
        code = answer["Error"]["Code"]
        held = {"Item": answer["Item"]} if "Item" in answer else {}
        return 400, {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", **held}


def collector_clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    """One virtual clock for both collectors' deadlines, Firehose backoff and botocore's backoff."""
    clock = FakeTime()
    virtual_backoff(monkeypatch, clock)
    virtual_deadlines(monkeypatch, audit_findings, clock)
    virtual_deadlines(monkeypatch, inventory, clock)
    return clock
