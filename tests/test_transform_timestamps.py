"""Every timestamp spelling AWS uses, to epoch seconds with ms precision."""

from __future__ import annotations

import time
from collections.abc import Iterator

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


@pytest.fixture
def new_york_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The Lambda's zone is UTC, a developer's rarely is: a naive timestamp must not follow
    the machine's zone. The zone is restored (and re-read) afterwards."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("new_york_clock")
@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2026-11-20 09:20:03.118", 1795166403.118),  # IoT Core logs v2: UTC without a zone
        ("2026-07-01T00:00:00", 1782864000.0),  # summer time in New York, still UTC here
        ("2026-11-20T09:20:03.118Z", 1795166403.118),
    ],
)
def test_a_timestamp_without_a_zone_is_utc_whatever_the_machine_zone(
    text: str, seconds: float
) -> None:
    assert time.localtime(seconds).tm_gmtoff != 0, "the fixture did not change the zone"
    assert epoch_seconds(text) == seconds


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (100_000_000_000, 100_000_000.0),  # 1e11 is the first ms value (1973 in ms)
        (99_999_999_999, 99_999_999_999.0),  # the last seconds value (year 5138)
        (100_000_000_000_000, 100_000_000.0),  # 1e14, the first us value
        (99_999_999_999_999, 99_999_999_999.999),  # the last ms value
        (100_000_000_000_000_000, 100_000_000.0),  # 1e17, the first ns value
        (99_999_999_999_999_984, 99_999_999_999.99998),  # the last us value a float holds
    ],
)
def test_the_unit_changes_exactly_at_its_threshold(value: int, seconds: float) -> None:
    assert epoch_seconds(value) == pytest.approx(seconds, abs=1e-3)


@pytest.mark.parametrize(("value", "seconds"), [(0, 0.0), (0.5, 0.5), ("0", 0.0)])
def test_the_epoch_itself_is_a_timestamp_plausibility_is_the_callers_call(
    value: object, seconds: float
) -> None:
    """Zero is 1970-01-01, a readable (if implausible) time: the caller says it is before
    2015, rather than calling it unreadable."""
    assert epoch_seconds(value) == seconds


def test_iso_fractions_are_kept_to_the_millisecond() -> None:
    assert epoch_seconds("2026-11-20T09:20:03.11849Z") == 1795166403.118
    assert epoch_seconds("2026-11-20T09:20:03.1186Z") == 1795166403.119
