"""Collector runs on a virtual clock: Firehose backoff and botocore's HTTP layer without waiting.

Shared by the collector tests. ``record_put_waits`` makes every ``put_records`` backoff a
recorded number instead of a sleep; ``VirtualHttp`` answers a real boto3 client's requests at
botocore's ``before-send`` event, moving a ``FakeTime`` by each answer's latency, so deadlines
are tested with the real retry logic and no network or real time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import botocore.retries.standard
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ReadTimeoutError

from collect import delivery
from collect.deadline import READ_TIMEOUT, Deadline
from shared.firehose import put_records
from tests.fake_time import FakeTime

__all__ = [
    "Answer",
    "VirtualHttp",
    "hung",
    "ok",
    "record_put_waits",
    "virtual_backoff",
    "virtual_deadlines",
]

Answer = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


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
