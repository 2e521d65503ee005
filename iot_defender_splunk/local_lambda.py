"""Running a Lambda handler outside Lambda."""

from __future__ import annotations

from dataclasses import dataclass


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
