"""Reading a function's numeric settings from its environment, so a typo fails the cold start.

A wrong value must stop the function before it reads or sends anything: a silently ignored
setting is worse than a loud failure, which Lambda's retries and alarms make visible.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,18}")


class ConfigError(ValueError):
    """A setting in the function's environment is invalid; nothing was read or sent."""


def number_setting(
    environ: Mapping[str, str], name: str, default: float, low: float, high: float
) -> float:
    """``environ[name]`` as a finite number within ``low..high``, or ``default`` when unset."""
    raw = environ.get(name, "").strip()
    if not raw:
        return float(default)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(_problem(name, raw, "is not a number", default)) from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(_problem(name, raw, f"is outside {_shown(low)}..{_shown(high)}", default))
    return value


def integer_setting(
    environ: Mapping[str, str], name: str, default: int, low: int, high: int
) -> int:
    """``environ[name]`` as a whole number (digits only) within ``low..high``, or ``default``."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not _WHOLE_NUMBER.fullmatch(raw):
        raise ConfigError(_problem(name, raw, "is not a whole number", default))
    value = int(raw)
    if not low <= value <= high:
        raise ConfigError(_problem(name, raw, f"is outside {low}..{high}", default))
    return value


def _problem(name: str, raw: str, what: str, default: float) -> str:
    return f"{name}: {raw[:40]!r} {what} (unset it for the default {_shown(default)})"


def _shown(value: float) -> str:
    """Whole values without a fraction or exponent: 2592000, not 2.592e+06."""
    return str(int(value)) if float(value).is_integer() else str(value)
