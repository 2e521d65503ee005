"""The fleet simulator: the one home of the messages AWS sends into the pipeline.

``simulate_fleet`` builds a fleet and its scripted incidents and returns what AWS would send
for it (``Simulation.messages``), packed into Firehose's invocations of the transform
(``Simulation.batches``); ``run_transform`` puts those through the real Lambda handler.

``stream_fleet`` and ``stream_transform`` do the same a batch at a time, for runs too long to
hold: the same records, batches and events, in the same order.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

from iot_defender_splunk.simulator.delivery import (
    Batch,
    Buffering,
    Record,
    by_arrival,
    firehose_batches,
    stream_batches,
)
from iot_defender_splunk.simulator.fleet import Fleet, build_fleet
from iot_defender_splunk.simulator.incidents import SCRIPTS, Incident, place
from iot_defender_splunk.simulator.runner import (
    Invocation,
    TransformRun,
    run_transform,
    stream_transform,
)
from iot_defender_splunk.simulator.stamps import HOUR
from iot_defender_splunk.simulator.traffic import Traffic

__all__ = [
    "FleetStream",
    "Incident",
    "Invocation",
    "Simulation",
    "TransformRun",
    "run_transform",
    "simulate_fleet",
    "stream_fleet",
    "stream_transform",
]


@dataclass(frozen=True)
class _Scenario:
    """A simulated fleet's ``hours`` up to ``end`` (epoch seconds), with its incidents."""

    fleet: Fleet
    incidents: tuple[Incident, ...]
    start: float
    end: float
    detect: bool

    @property
    def hours(self) -> float:
        return (self.end - self.start) / HOUR

    def expected_detections(self, incident: Incident) -> tuple[str, ...]:
        return incident.expected_detections(hours=self.hours, detect=self.detect)


@dataclass(frozen=True)
class Simulation(_Scenario):
    """A simulated fleet and every record AWS sent for it, held in memory."""

    messages: tuple[Record, ...]
    buffering: Buffering

    @cached_property
    def batches(self) -> list[Batch]:
        """The messages as Firehose hands them to the transform, in arrival order."""
        return firehose_batches(self.messages, self.buffering)


@dataclass(frozen=True)
class FleetStream(_Scenario):
    """A simulated fleet whose records are built as they are asked for, in arrival order, so
    a long run holds a few batches rather than all of them."""

    seed: int
    buffering: Buffering

    def traffic(self) -> Traffic:
        return Traffic(
            self.fleet,
            self.incidents,
            start=self.start,
            end=self.end,
            detect=self.detect,
            seed=self.seed,
        )

    def records(self) -> Iterator[Record]:
        """What AWS sends, in arrival order: ``Simulation.messages``, one at a time."""
        return self.traffic().arrivals()

    def batches(self) -> Iterator[Batch]:
        """The records as Firehose hands them to the transform: ``Simulation.batches``, each
        built once its buffer closes."""
        return stream_batches(self.records(), self.buffering)


def stream_fleet(
    *,
    devices: int,
    hours: float,
    seed: int,
    end: float,
    detect: bool = True,
    buffering: Buffering | None = None,
) -> FleetStream:
    """``devices`` things' last ``hours`` before ``end``, the same for the same arguments,
    their records not built yet.

    With ``detect`` their metrics arrive as Detect's metrics exports (and Detect's alarms);
    without it, as device metric reports.
    """
    if devices < 1 or hours <= 0:
        raise ValueError("a simulation needs at least one device and some hours")
    fleet = build_fleet(devices, random.Random(seed))
    incidents = place(SCRIPTS, fleet, end=end)
    start = end - hours * HOUR
    return FleetStream(fleet, incidents, start, end, detect, seed, buffering or Buffering())


def simulate_fleet(
    *,
    devices: int,
    hours: float,
    seed: int,
    end: float,
    detect: bool = True,
    buffering: Buffering | None = None,
) -> Simulation:
    """``stream_fleet``'s simulation with every record built and sorted by arrival."""
    plan = stream_fleet(
        devices=devices, hours=hours, seed=seed, end=end, detect=detect, buffering=buffering
    )
    messages = tuple(sorted(plan.traffic().records(), key=by_arrival))
    return Simulation(
        plan.fleet, plan.incidents, plan.start, plan.end, plan.detect, messages, plan.buffering
    )
