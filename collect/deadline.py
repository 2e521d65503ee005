"""Time limits that fit the invocation, so a collector run ends with its log and metrics written.

Lambda kills a function at its timeout: nothing after that point runs, so a run that meets a
stalled network must stop on its own, early enough to log where it stopped and flush its
metrics. The invocation's end is read once from the Lambda context; from it follow

* when reading must stop (``reads_end``): early enough to put what is buffered,
* when putting must stop (``puts_end``): early enough to save the checkpoint and hand the
  rest of the export to the next slice, and
* when that hand-off must stop (``handoff_end``): early enough to log and emit metrics.

Every AWS client of a run is built for its phase: short connect/read timeouts, a retry count
that fits the time left, and two botocore event hooks that refuse to start an attempt (or
wait out a backoff) that could end after the phase's end. The run then gets ``OutOfTimeError``
instead of a Lambda timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from botocore.config import Config

__all__ = [
    "ATTEMPT_SECONDS",
    "CONNECT_TIMEOUT",
    "FLUSH_RESERVE_SECONDS",
    "HANDOFF_RESERVE_SECONDS",
    "LOG_RESERVE_SECONDS",
    "MAX_ATTEMPTS",
    "READ_TIMEOUT",
    "Deadline",
    "OutOfTimeError",
    "attempts_within",
    "client_config",
    "guard_client",
]

# An AWS API call normally answers in well under a second; a connection or an answer that
# takes longer than this has stalled, and a fresh attempt is the better bet.
CONNECT_TIMEOUT: Final = 3.0
READ_TIMEOUT: Final = 10.0
# Adaptive mode's client-side rate limiter waits for a token before each attempt; at its
# lowest fill rate (0.5 tokens/s) that wait is at most 2 s.
RATE_LIMIT_WAIT: Final = 2.0
# The longest one attempt can take, waits included.
ATTEMPT_SECONDS: Final = CONNECT_TIMEOUT + READ_TIMEOUT + RATE_LIMIT_WAIT
# What botocore's adaptive mode would otherwise make of a throttled call (1 + 10 retries).
MAX_ATTEMPTS: Final = 11
# botocore's standard backoff before retry i (1-based): at most min(2**(i-1), 20) s, raised by
# an x-amz-retry-after header by at most 5 s more.
_MAX_BACKOFF: Final = 20.0
_RETRY_AFTER_EXTRA: Final = 5.0
# Writing the run's last log line and its metrics (stdout, EMF) and returning.
LOG_RESERVE_SECONDS: Final = 5.0
# Putting the last buffered batch (a few attempts, Firehose's partial-failure retries).
FLUSH_RESERVE_SECONDS: Final = 3 * ATTEMPT_SECONDS
# Saving the checkpoint (an attempt and a retry) and invoking the next slice (one attempt).
HANDOFF_RESERVE_SECONDS: Final = 3 * ATTEMPT_SECONDS


class OutOfTimeError(RuntimeError):
    """No time is left for the next attempt of a call; the run must stop and say where."""


class RemainingTime(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True)
class Deadline:
    """The invocation's end as a reading of ``clock``, and the phases that must end before it.

    ``sleep`` is what backoff between Firehose retries waits with; tests pass a fake clock
    and its sleep, so time moves only when the code under test makes it.
    """

    ends_at: float
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    @classmethod
    def from_context(
        cls,
        context: RemainingTime,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Deadline:
        """The end of the invocation ``context`` describes."""
        return cls(clock() + context.get_remaining_time_in_millis() / 1000, clock, sleep)

    @property
    def handoff_end(self) -> float:
        return self.ends_at - LOG_RESERVE_SECONDS

    @property
    def puts_end(self) -> float:
        return self.handoff_end - HANDOFF_RESERVE_SECONDS

    @property
    def reads_end(self) -> float:
        return self.puts_end - FLUSH_RESERVE_SECONDS


def attempts_within(seconds: float) -> int:
    """The most attempts (1..MAX_ATTEMPTS) whose worst case, backoffs included, fits ``seconds``."""
    attempts, spent = 1, ATTEMPT_SECONDS
    while attempts < MAX_ATTEMPTS:
        spent += _backoff_bound(attempts) + ATTEMPT_SECONDS
        if spent > seconds:
            break
        attempts += 1
    return attempts


def client_config(seconds: float) -> Config:
    """Short timeouts and adaptive retries, as many as fit in ``seconds``."""
    return Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"mode": "adaptive", "total_max_attempts": attempts_within(seconds)},
    )


def guard_client(client: Any, end: float, clock: Callable[[], float]) -> Any:
    """Make ``client`` refuse any attempt, or backoff, that could end after ``end``.

    The retry counts of ``client_config`` are fixed when the client is made; these hooks hold
    however late in the run a call starts.
    """

    def before_send(**_: Any) -> None:
        if clock() + ATTEMPT_SECONDS > end:
            raise OutOfTimeError("no time left for another attempt of this call")

    def needs_retry(
        *, attempts: int, response: Any, caught_exception: Any, operation: Any, **_: Any
    ) -> None:
        if isinstance(caught_exception, OutOfTimeError):  # refused by before_send
            raise caught_exception
        failed = caught_exception is not None or response[0].status_code >= 300
        if failed and clock() + _backoff_bound(attempts) + ATTEMPT_SECONDS > end:
            what = caught_exception or response[1].get("Error", {}).get("Code", "an error")
            raise OutOfTimeError(
                f"{operation.name} failed ({what}) and no time is left to retry it"
            ) from caught_exception

    # On the service's own event name, first: ahead of botocore's retry handler, which
    # registers there (a handler of the bare event name would run after it).
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"before-send.{service}", before_send)
    client.meta.events.register_first(f"needs-retry.{service}", needs_retry)
    return client


def _backoff_bound(retry: int) -> float:
    return min(2.0 ** (retry - 1), _MAX_BACKOFF) + _RETRY_AFTER_EXTRA
