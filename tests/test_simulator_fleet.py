"""The simulated fleet: valid names, every type present, normal days below every floor."""

from __future__ import annotations

import random
import re

from hypothesis import given
from hypothesis import strategies as st

from iot_defender_splunk.simulator.fleet import THING_TYPES, build_fleet
from iot_defender_splunk.simulator.stamps import HOUR
from iot_defender_splunk.simulator.traffic import PERIOD
from shared.names import THING_NAME_PATTERN

# iot_defender_spike_floor: what one 5-minute datapoint must reach to count as a spike.
SPIKE_FLOORS = {"bytes_out": 5_000_000, "packets_out": 5_000, "messages": 600}


@given(st.integers(min_value=1, max_value=300), st.integers())
def test_names_are_thing_names_unique_and_addresses_distinct(size: int, seed: int) -> None:
    fleet = build_fleet(size, random.Random(seed))
    names = [device.name for device in fleet.devices]
    assert all(re.fullmatch(THING_NAME_PATTERN, name) for name in names)
    assert len(set(names)) == size
    assert len({device.ip for device in fleet.devices}) == size
    for device in fleet.devices:
        assert device.firmware in device.thing_type.firmware
        assert device.segment in device.thing_type.segments
        assert device.groups == (device.thing_type.group, device.segment)
        assert 0 < device.report_offset < PERIOD


def test_every_type_is_present_from_five_devices() -> None:
    fleet = build_fleet(5, random.Random(1))
    assert {device.thing_type for device in fleet.devices} == set(THING_TYPES)


def test_the_same_seed_gives_the_same_fleet() -> None:
    assert build_fleet(40, random.Random(9)) == build_fleet(40, random.Random(9))
    assert build_fleet(40, random.Random(9)) != build_fleet(40, random.Random(10))


@given(st.floats(min_value=0, max_value=7 * 24 * HOUR), st.integers(min_value=0, max_value=19))
def test_a_normal_peak_stays_below_every_spike_floor(t: float, position: int) -> None:
    """At the top of its daily swing and of its noise (+10 %), no device reaches a floor."""
    device = build_fleet(20, random.Random(3)).devices[position]
    per_period = device.daily_factor(t) / (HOUR / PERIOD) * 1.1
    kind = device.thing_type
    assert kind.bytes_out * per_period < SPIKE_FLOORS["bytes_out"]
    assert kind.packets_out * per_period < SPIKE_FLOORS["packets_out"]
    assert kind.messages * per_period < SPIKE_FLOORS["messages"]
    assert 1 - kind.swing <= device.daily_factor(t) <= 1 + kind.swing


def test_the_daily_pattern_peaks_at_the_types_hour() -> None:
    device = build_fleet(1, random.Random(2)).devices[0]
    peak = (device.thing_type.peak_hour * HOUR - device.phase) % (24 * HOUR)
    assert device.daily_factor(peak) > device.daily_factor(peak + 12 * HOUR)
    assert device.daily_factor(peak) == 1 + device.thing_type.swing
