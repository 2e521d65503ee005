"""Turn the many timestamp spellings AWS uses into HEC ``time`` (epoch seconds, ms precision)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

# AWS IoT launched in 2015: anything earlier is a unit mix-up or garbage, never a real event.
EARLIEST_PLAUSIBLE = 1_420_070_400.0  # 2015-01-01T00:00:00Z

# Magnitude thresholds that tell the unit of an epoch number. Epoch seconds stay below 1e11
# until the year 5138, and epoch ms passed 1e11 in 1973, so the ranges cannot overlap.
_NANOS = 1e17
_MICROS = 1e14
_MILLIS = 1e11


def epoch_seconds(value: object) -> float | None:
    """Epoch seconds for a number (s, ms, us or ns, told apart by size) or a date string.

    Returns None when the value is not a timestamp at all; plausibility is the caller's call.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_number(float(value))
    if isinstance(value, str):
        return _from_string(value.strip())
    return None


def _from_number(number: float) -> float | None:
    if not math.isfinite(number) or number < 0:
        return None
    if number >= _NANOS:
        number /= 1e9
    elif number >= _MICROS:
        number /= 1e6
    elif number >= _MILLIS:
        number /= 1e3
    return round(number, 3)


def _from_string(text: str) -> float | None:
    if not text:
        return None
    try:
        return _from_number(float(text))
    except ValueError:
        pass
    try:
        # 3.11's fromisoformat takes 'Z', a space separator and fractions of any length.
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # IoT Core log timestamps are UTC without a zone.
    return round(parsed.timestamp(), 3)
