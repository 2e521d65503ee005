"""Running a Lambda handler outside Lambda."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null while a handler runs: powertools' logger and EMF
    metrics hold their own reference to stdout, so redirecting sys.stdout is not enough."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


@dataclass
class LocalLambdaContext:
    """The LambdaContext attributes powertools reads, for running the handler outside Lambda."""

    function_name: str = "iot-defender-splunk-transform"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = (
        "arn:aws:lambda:eu-west-1:123456789012:function:iot-defender-splunk-transform"
    )
    aws_request_id: str = "52fdfc07-2182-454f-963f-5f0f9a621d72"
    remaining_ms: int = 300_000  # the transform's timeout, as at the start of an invocation

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms
