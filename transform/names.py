"""Recognising AWS IoT names in device-controlled strings."""

from __future__ import annotations

import re

_THING_NAME = re.compile(r"[a-zA-Z0-9:_-]{1,128}")


def thing_name(value: object) -> str | None:
    """``value`` if it is a valid thing name, else None.

    MQTT client ids are chosen by the client; AWS's recommended policy makes them equal to the
    thing name, so a client id is treated as the thing only when it could be one.
    """
    if isinstance(value, str) and _THING_NAME.fullmatch(value):
        return value
    return None
