"""Run calls on threads at once and hand back every result, or fail with every error.

A thread that raises just dies: its result is missing and, unless the test counts, nothing
notices. Tests that need concurrency use :func:`run_at_once` so a lost call is a failure with
its own traceback, never a shorter list.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

__all__ = ["run_at_once"]

Result = TypeVar("Result")

# Generous for a loaded machine; a thread still running after it is reported as hung.
JOIN_TIMEOUT_SECONDS: Final = 60.0


def run_at_once(
    calls: Sequence[Callable[[], Result]], *, timeout: float = JOIN_TIMEOUT_SECONDS
) -> list[Result]:
    """Start every call on its own thread behind one barrier; return results in call order.

    Raises an exception group holding each call's exception (and a ``TimeoutError`` for
    each call still running after ``timeout``) if any call did not return.
    """
    barrier = threading.Barrier(len(calls))
    results: dict[int, Result] = {}
    errors: dict[int, BaseException] = {}
    lock = threading.Lock()

    def run(index: int, call: Callable[[], Result]) -> None:
        try:
            barrier.wait()
            value = call()
        except BaseException as error:  # every failure is handed to the test
            with lock:
                errors[index] = error
        else:
            with lock:
                results[index] = value

    threads = [
        threading.Thread(target=run, args=(index, call), name=f"run-at-once-{index}", daemon=True)
        for index, call in enumerate(calls)
    ]
    try:
        for thread in threads:
            thread.start()
    except BaseException:
        barrier.abort()  # the threads already started stop waiting for the rest
        raise
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    with lock:
        for index, thread in enumerate(threads):
            if thread.is_alive() and index not in errors:
                errors[index] = TimeoutError(f"call {index} still running after {timeout:g} s")
        if errors:
            raise BaseExceptionGroup(
                f"{len(errors)} of {len(calls)} concurrent calls failed",
                [errors[index] for index in sorted(errors)],
            )
        return [results[index] for index in range(len(calls))]
