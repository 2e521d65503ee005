"""The incident scripts: what they name exists, and they land on the devices they describe."""

from __future__ import annotations

import random

import pytest

from appbuild.build_app import DETECTIONS_DIR
from iot_defender_splunk.simulator.fleet import build_fleet
from iot_defender_splunk.simulator.incidents import SCRIPTS, Script, place

END = 1_795_399_200.0


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.id for s in SCRIPTS])
def test_every_targeted_detection_is_a_detection_of_the_app(script: Script) -> None:
    for target in script.targets:
        assert (DETECTIONS_DIR / f"{target.detection}.yml").is_file(), target.detection


def test_ids_are_stable_and_unique() -> None:
    assert [s.id for s in SCRIPTS] == [
        "open-port",
        "exfiltration",
        "auth-storm",
        "cloned-certificate",
        "audit-findings",
    ]


def test_each_incident_hits_a_device_of_its_type_and_starts_before_the_end() -> None:
    fleet = build_fleet(20, random.Random(1))
    incidents = {incident.id: incident for incident in place(SCRIPTS, fleet, end=END)}
    kinds = {i: [d.thing_type.name for d in incident.devices] for i, incident in incidents.items()}
    assert kinds == {
        "open-port": ["ip-camera"],
        "exfiltration": ["edge-gateway"],
        "auth-storm": [],
        "cloned-certificate": ["water-pump"],
        "audit-findings": ["water-pump"],
    }
    assert incidents["audit-findings"].devices == incidents["cloned-certificate"].devices
    assert incidents["open-port"].start == END - 50 * 60
    assert all(incident.start < END for incident in incidents.values())


def test_a_fleet_of_one_carries_every_incident() -> None:
    (device,) = build_fleet(1, random.Random(1)).devices
    incidents = place(SCRIPTS, build_fleet(1, random.Random(1)), end=END)
    assert {i.devices for i in incidents if i.script.thing_type} == {(device,)}


def test_expected_detections_follow_the_history_and_detect() -> None:
    fleet = build_fleet(20, random.Random(1))
    (open_port,) = [i for i in place(SCRIPTS, fleet, end=END) if i.id == "open-port"]
    assert open_port.expected_detections(hours=1, detect=False) == ("risky_port_listening",)
    assert open_port.expected_detections(hours=6, detect=True) == (
        "risky_port_listening",
        "listening_port_count_changed",
        "detect_violation_in_alarm",
    )
    assert set(open_port.expected_detections(hours=48, detect=True)) == set(open_port.detections)
