"""Every timestamp spelling AWS uses, to epoch seconds with ms precision."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transform.timestamps import epoch_seconds


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (1795165961000, 1795165961.0),  # ms (Detect exports, SNS alarms, lifecycle)
        (1795165961, 1795165961.0),  # s
        (1795165961.157, 1795165961.157),  # s with fraction (ListAuditFindings)
        (1795165961123456, 1795165961.123),  # us
        (1795165961123456789, 1795165961.123),  # ns
        ("1582862626000", 1582862626.0),  # numeric string (additionalInfo EXPIRATION_TIME)
        ("2026-11-20 09:20:03.118", 1795166403.118),  # IoT Core logs v2 (UTC, no zone)
        ("2026-11-20T09:20:03.118Z", 1795166403.118),  # ISO 8601 (SNS Timestamp)
        ("2026-11-20T10:20:03+01:00", 1795166403.0),
    ],
)
def test_units_and_spellings(value: object, seconds: float) -> None:
    assert epoch_seconds(value) == seconds


@pytest.mark.parametrize(
    "value", [None, True, "", "yesterday", float("nan"), float("inf"), -5, [1], {}]
)
def test_not_a_timestamp(value: object) -> None:
    assert epoch_seconds(value) is None


@given(st.integers(min_value=1_420_070_400_000, max_value=4_102_444_800_000))
def test_milliseconds_round_trip_to_the_millisecond(millis: int) -> None:
    assert epoch_seconds(millis) == round(millis / 1000, 3)
    assert epoch_seconds(millis / 1000) == round(millis / 1000, 3)
