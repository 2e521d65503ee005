"""The sourcetype vocabulary: the contract with the Splunk app (see docs/events.md)."""

from typing import Final

METRIC: Final = "aws:iot:defender:metric"
VIOLATION: Final = "aws:iot:defender:violation"
AUDIT_TASK: Final = "aws:iot:defender:audit:task"
AUDIT_CHECK: Final = "aws:iot:defender:audit:check"
AUDIT_FINDING: Final = "aws:iot:defender:audit:finding"
IOT_LOG: Final = "aws:iot:log"
LIFECYCLE: Final = "aws:iot:lifecycle"
CLOUDWATCH_METRIC: Final = "aws:iot:cloudwatch:metric"
THING: Final = "aws:iot:thing"
RESPONSE: Final = "aws:iot:response"
UNPARSED: Final = "aws:iot:defender:unparsed"

ALL_SOURCETYPES: Final = frozenset(
    {
        METRIC,
        VIOLATION,
        AUDIT_TASK,
        AUDIT_CHECK,
        AUDIT_FINDING,
        IOT_LOG,
        LIFECYCLE,
        CLOUDWATCH_METRIC,
        THING,
        RESPONSE,
        UNPARSED,
    }
)
