"""The fleet simulator: the one home of the messages AWS sends into the pipeline.

``simulate_fleet`` builds a fleet and its scripted incidents and returns what AWS would send
for it (``Simulation.messages``), packed into Firehose's invocations of the transform
(``Simulation.batches``); ``run_transform`` puts those through the real Lambda handler.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cached_property

from iot_defender_splunk.simulator.delivery import Batch, Buffering, Record, firehose_batches
from iot_defender_splunk.simulator.fleet import Fleet, build_fleet
from iot_defender_splunk.simulator.incidents import SCRIPTS, Incident, place
from iot_defender_splunk.simulator.runner import TransformRun, run_transform
from iot_defender_splunk.simulator.stamps import HOUR
from iot_defender_splunk.simulator.traffic import Traffic

__all__ = ["Incident", "Simulation", "TransformRun", "run_transform", "simulate_fleet"]


@dataclass(frozen=True)
class Simulation:
    """A simulated fleet's ``hours`` up to ``end`` (epoch seconds) and what AWS sent for it."""

    fleet: Fleet
    incidents: tuple[Incident, ...]
    start: float
    end: float
    detect: bool
    messages: tuple[Record, ...]
    buffering: Buffering

    @property
    def hours(self) -> float:
        return (self.end - self.start) / HOUR

    @cached_property
    def batches(self) -> list[Batch]:
        """The messages as Firehose hands them to the transform, in arrival order."""
        return firehose_batches(self.messages, self.buffering)

    def expected_detections(self, incident: Incident) -> tuple[str, ...]:
        return incident.expected_detections(hours=self.hours, detect=self.detect)


def simulate_fleet(
    *,
    devices: int,
    hours: float,
    seed: int,
    end: float,
    detect: bool = True,
    buffering: Buffering | None = None,
) -> Simulation:
    """``devices`` things' last ``hours`` before ``end``, the same for the same arguments.

    With ``detect`` their metrics arrive as Detect's metrics exports (and Detect's alarms);
    without it, as device metric reports.
    """
    if devices < 1 or hours <= 0:
        raise ValueError("a simulation needs at least one device and some hours")
    fleet = build_fleet(devices, random.Random(seed))
    incidents = place(SCRIPTS, fleet, end=end)
    start = end - hours * HOUR
    traffic = Traffic(fleet, incidents, start=start, end=end, detect=detect, seed=seed)
    messages = tuple(sorted(traffic.records(), key=lambda record: record.arrival))
    return Simulation(fleet, incidents, start, end, detect, messages, buffering or Buffering())
