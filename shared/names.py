"""AWS IoT's naming rules, in one place for every function that checks a name."""

from __future__ import annotations

import re
from typing import Final

# A thing name or thing group name: 1-128 of [a-zA-Z0-9:_-] (IoT API reference).
THING_NAME_PATTERN: Final = r"[a-zA-Z0-9:_-]{1,128}"
_THING_NAME = re.compile(THING_NAME_PATTERN, re.ASCII)


def thing_name(value: object) -> str | None:
    """``value`` if it is a valid thing name, else None.

    MQTT client ids are chosen by the client; AWS's recommended policy makes them equal to the
    thing name, so a client id is treated as the thing only when it could be one.
    """
    if isinstance(value, str) and _THING_NAME.fullmatch(value):
        return value
    return None
