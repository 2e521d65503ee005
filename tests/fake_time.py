"""A clock that only moves when the code under test sleeps, so retries and timeouts are instant."""

from __future__ import annotations

__all__ = ["FakeTime"]


class FakeTime:
    """Pass ``sleep`` and ``clock`` to the code under test; ``sleeps`` records every wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
