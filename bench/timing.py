"""Timing the transform and the naive baseline on one batch, the same way for both.

Each implementation is called as Lambda would call it, stdout silenced. The implementations
take turns, call after call, REPEATS rounds, and each figure is the median of its own calls:
on a shared machine a burst of load then slows every implementation of a round alike, so the
ratios within one run hold even when the absolute times do not. The counts are read from the
responses outside the timed region.
"""

from __future__ import annotations

import base64
import dataclasses
import gc
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, cast

from aws_lambda_powertools.utilities.typing import LambdaContext

from bench.inputs import Batch
from bench.naive import naive_events, naive_handler
from iot_defender_splunk.local_lambda import LocalLambdaContext, quiet_stdout
from tests.fakes import FakeFirehose
from transform import handler
from transform.config import Settings

Doc = dict[str, Any]

REPEATS: Final = 9  # the targets are medians of at least 7 calls

# ---------------------------------------------------------------------------------------------
# The two implementations under test.
# ---------------------------------------------------------------------------------------------


DEPLOYED_SETTINGS: Final = Settings()
UNCAPPED_SETTINGS: Final = dataclasses.replace(DEPLOYED_SETTINGS, response_limit_bytes=10**12)
REFERENCE_SETTINGS: Final = dataclasses.replace(UNCAPPED_SETTINGS, fast_path=False)


def run_ours(event: Doc, settings: Settings = DEPLOYED_SETTINGS) -> tuple[Doc, int]:
    """Our handler as Lambda calls it; re-ingest goes to the fake stream. Returns re-put count.

    Making the handler costs microseconds against the milliseconds of a batch."""
    fake = FakeFirehose(keep=False)  # a healthy stream that only counts: no memory kept
    lambda_handler = handler.make_handler(handler.Runtime(settings, firehose=fake))
    context = cast(LambdaContext, LocalLambdaContext())
    response: Doc = lambda_handler(event, context)
    return response, fake.accepted_count


def run_ours_uncapped(event: Doc) -> tuple[Doc, int]:
    """Our handler with the response limit lifted: every record fully transformed in one call.

    This is the amortised cost per record: under the real limit, re-ingested records are
    transformed in a later invocation instead, so the work is the same, only deferred.
    """
    return run_ours(event, UNCAPPED_SETTINGS)


def run_reference_uncapped(event: Doc) -> tuple[Doc, int]:
    """The same, on the reference decoders alone (no fast path): the handler before the fast
    path existed, so "at least as fast as before" is measured in the same run."""
    return run_ours(event, REFERENCE_SETTINGS)


# ---------------------------------------------------------------------------------------------
# Measuring.
# ---------------------------------------------------------------------------------------------


Runner = Callable[[Doc], tuple[Doc, int]]


def timed(run: Runner, event: Doc) -> tuple[float, Doc, int]:
    gc.collect()
    with quiet_stdout():
        start = time.perf_counter()
        response, reput = run(event)
        elapsed = time.perf_counter() - start
    return elapsed, response, reput


@dataclass(frozen=True)
class Outcome:
    seconds: float
    ok: int
    dropped: int
    failed: int
    reingested: int
    events: int
    response_bytes: int


def _our_events(data: bytes) -> int:
    return data.count(b"\n")  # one newline-terminated JSON object per HEC event


def summarize(seconds: float, response: Doc, reput: int, count: Callable[[bytes], int]) -> Outcome:
    """Counts from a response, outside the timed region."""
    records = response.get("records", [])
    results = [record["result"] for record in records]
    events = sum(count(base64.b64decode(r["data"])) for r in records if r["result"] == "Ok")
    return Outcome(
        seconds=seconds,
        ok=results.count("Ok"),
        dropped=results.count("Dropped"),
        failed=results.count("ProcessingFailed"),
        reingested=reput,
        events=events,
        response_bytes=len(json.dumps(response)),
    )


@dataclass(frozen=True)
class CaseResult:
    batch: Batch
    ours: Outcome
    full: Outcome
    reference: Outcome
    naive: Outcome

    def rate(self, outcome: Outcome) -> float:
        """Input records answered per second (re-put records count: they are answered)."""
        return self.batch.records / outcome.seconds

    def ratio(self, *, full: bool = False) -> float:
        """Ours over naive; ``full`` compares complete transformation of every record."""
        return self.rate(self.full if full else self.ours) / self.rate(self.naive)

    def speedup(self) -> float:
        """Full transformation with the fast path over the reference decoders alone."""
        return self.rate(self.full) / self.rate(self.reference)


RUNNERS: Final[tuple[tuple[Runner, Callable[[bytes], int]], ...]] = (
    (run_ours, _our_events),
    (run_ours_uncapped, _our_events),
    (run_reference_uncapped, _our_events),
    (naive_handler, naive_events),
)


def measure_case(batch: Batch, repeats: int = REPEATS) -> CaseResult:
    """Every implementation on the batch, interleaved call by call; medians of ``repeats``."""
    seconds: list[list[float]] = [[] for _ in RUNNERS]
    last: list[tuple[Doc, int]] = [({}, 0) for _ in RUNNERS]
    for _ in range(repeats):
        for at, (run, _count) in enumerate(RUNNERS):
            elapsed, response, reput = timed(run, batch.event)
            seconds[at].append(elapsed)
            last[at] = (response, reput)
    ours, full, reference, naive = (
        summarize(statistics.median(times), *last[at], count)
        for at, (times, (_run, count)) in enumerate(zip(seconds, RUNNERS, strict=True))
    )
    return CaseResult(batch=batch, ours=ours, full=full, reference=reference, naive=naive)
