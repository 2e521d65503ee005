"""Numeric settings every function reads the same way: defaults, bounds, and one clear error."""

from __future__ import annotations

import pytest

from shared.settings import ConfigError, integer_setting, number_setting


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, 7), ("", 7), ("  ", 7), ("0", 0), (" 25 ", 25)]
)
def test_integer_setting_reads_whole_numbers_and_defaults_when_unset(
    raw: str | None, expected: int
) -> None:
    environ = {} if raw is None else {"LIMIT": raw}
    assert integer_setting(environ, "LIMIT", 7, 0, 100) == expected


@pytest.mark.parametrize("raw", ["1.5", "1e3", "+5", "0x10", "10 000", "ten", "٣"])
def test_integer_setting_accepts_digits_only(raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        integer_setting({"LIMIT": raw}, "LIMIT", 7, 0, 10**6)
    assert str(caught.value) == f"LIMIT: {raw!r} is not a whole number (unset it for the default 7)"


@pytest.mark.parametrize("raw", ["-1", "101"])
def test_integer_setting_bounds_are_inclusive_and_enforced(raw: str) -> None:
    assert integer_setting({"LIMIT": "100"}, "LIMIT", 7, 0, 100) == 100
    with pytest.raises(ConfigError, match=r"LIMIT: '-?\d+' is outside 0\.\.100"):
        integer_setting({"LIMIT": raw}, "LIMIT", 7, 0, 100)


@pytest.mark.parametrize(
    "environ", [{}, {"SKEW": ""}, {"SKEW": "  "}], ids=["unset", "empty", "blank"]
)
def test_number_setting_defaults_when_unset(environ: dict[str, str]) -> None:
    value = number_setting(environ, "SKEW", 60, 0.0, 100.0)
    assert (value, type(value)) == (60.0, float)


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "1e309"])
def test_number_setting_refuses_what_is_not_finite(raw: str) -> None:
    with pytest.raises(ConfigError, match="is outside"):
        number_setting({"SKEW": raw}, "SKEW", 60.0, 0.0, 1e9)


def test_number_setting_reads_fractions_and_long_values_are_shown_cut() -> None:
    assert number_setting({"SKEW": "2.5"}, "SKEW", 60.0, 0.0, 10.0) == 2.5
    with pytest.raises(ConfigError) as caught:
        number_setting({"SKEW": "x" * 500}, "SKEW", 60.0, 0.0, 10.0)
    assert len(str(caught.value)) < 120


@pytest.mark.parametrize("raw", ["0.5", "10"])
def test_number_setting_bounds_are_inclusive(raw: str) -> None:
    assert number_setting({"SKEW": raw}, "SKEW", 60.0, 0.5, 10.0) == float(raw)


@pytest.mark.parametrize("raw", ["0.49", "10.01"])
def test_number_setting_outside_its_bounds_says_them_as_written(raw: str) -> None:
    """Whole bounds and defaults read as the operator would write them (2592000, not
    2.592e+06); fractional ones as they are."""
    with pytest.raises(ConfigError) as caught:
        number_setting({"SKEW": raw}, "SKEW", 2_592_000.0, 0.5, 10.0)
    assert str(caught.value) == (
        f"SKEW: {raw!r} is outside 0.5..10 (unset it for the default 2592000)"
    )


def test_a_long_bad_value_is_quoted_to_its_first_40_characters() -> None:
    raw = "1234567890" * 5
    with pytest.raises(ConfigError) as caught:
        number_setting({"SKEW": raw + "x"}, "SKEW", 60.0, 0.0, 10.0)
    assert str(caught.value) == (
        f"SKEW: {raw[:40]!r} is not a number (unset it for the default 60)"
    )
