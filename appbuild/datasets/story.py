"""A dataset is a story: the records AWS (and the responder) would put into Firehose, each
with the moment Firehose receives it, laid out relative to `REFERENCE_TIME`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from appbuild.datasets.responder import responses
from iot_defender_splunk.simulator import iot_logs
from iot_defender_splunk.simulator.delivery import Message, Record
from respond.actions import Target

# 2026-11-23T02:00:00Z. The handler distrusts only timestamps more than a day ahead of its wall
# clock, so on any machine whose clock is past 2026-11-22 the datasets come out the same.
REFERENCE_TIME = 1_795_399_200
# CloudWatch Logs delivers a burst of log entries this long after its last entry.
LOG_DELAY = 5


def ago(seconds: float) -> float:
    """A moment `seconds` before the reference time."""
    return REFERENCE_TIME - seconds


@dataclass
class Story:
    records: list[Record] = field(default_factory=list)

    def add(self, t: float, message: Message) -> None:
        """`message` reaches Firehose at `t`."""
        self.records.append(message.arriving(t))

    def add_logs(self, entries: Sequence[iot_logs.LogEntry]) -> None:
        """IoT log entries as CloudWatch delivers them: a payload per burst of up to a minute."""
        for burst in iot_logs.bursts(entries):
            self.add(burst[-1][0] + LOG_DELAY, iot_logs.batch_message(burst, first=burst[0][0]))

    def respond(self, t: float, request: dict[str, Any], targets: list[Target]) -> None:
        """The responder's records of a request it completed at `t`, arriving a second later."""
        for record in responses(request, targets, t):
            self.add(t + 1, Message("response", record))


DATASETS: dict[str, Callable[[], Story]] = {}


def dataset(function: Callable[[], Story]) -> Callable[[], Story]:
    """Register a dataset builder under its function name."""
    DATASETS[function.__name__] = function
    return function
