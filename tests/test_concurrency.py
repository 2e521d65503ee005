"""run_at_once must hand back every result in order, and never let a failed call vanish."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from tests.concurrency import run_at_once


def square(number: int) -> Callable[[], int]:
    return lambda: number * number


def test_results_come_back_in_call_order():
    assert run_at_once([square(n) for n in range(8)]) == [n * n for n in range(8)]


def test_calls_run_at_the_same_time():
    # Each call waits for all the others: this only returns if every call is running at once.
    everyone = threading.Barrier(6)
    arrival_order = run_at_once([lambda: everyone.wait(30) for _ in range(6)])
    assert sorted(arrival_order) == list(range(6))


def test_every_failed_call_is_reported_with_its_own_exception():
    def call(number: int) -> Callable[[], int]:
        def run() -> int:
            if number % 3 == 0:
                raise ValueError(f"call {number} broke")
            return number

        return run

    with pytest.raises(ExceptionGroup, match=r"3 of 7 concurrent calls failed") as caught:
        run_at_once([call(n) for n in range(7)])
    messages = [str(error) for error in caught.value.exceptions]
    assert messages == ["call 0 broke", "call 3 broke", "call 6 broke"]


def test_a_call_still_running_after_the_timeout_is_reported_as_hung():
    release = threading.Event()
    try:
        with pytest.raises(ExceptionGroup, match="1 of 1") as caught:
            run_at_once([lambda: release.wait(30)], timeout=0.2)
    finally:
        release.set()
    [hung] = caught.value.exceptions
    assert isinstance(hung, TimeoutError)
    assert str(hung) == "call 0 still running after 0.2 s"
