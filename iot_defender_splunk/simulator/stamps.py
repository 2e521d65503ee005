"""Deterministic identifiers, values and AWS time spellings for simulated messages.

Everything a simulated message holds is derived from its content or a seeded generator, so a
simulation (and every dataset built from one) comes out byte-for-byte the same on every run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from typing import Any

# Where simulated messages come from: one account and region, as in every sample.
ACCOUNT = "123456789012"
REGION = "eu-west-1"
# The IP an IoT endpoint would have (documentation range, as in every sample of the project).
IOT_ENDPOINT = "198.51.100.40"

MINUTE = 60
HOUR = 3600
DAY = 86_400


def epoch_ms(t: float) -> int:
    """AWS's epoch milliseconds for a moment in epoch seconds."""
    return round(t * 1000)


def iso_utc(t: float, *, sep: str = "T", millis: bool = False) -> str:
    """UTC as AWS writes it: ``2026-11-23T02:00:00Z``, or IoT logs' ``2026-11-23 02:00:00.000``."""
    stamp = dt.datetime.fromtimestamp(t, dt.UTC)
    text = stamp.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
    return f"{text}.{stamp.microsecond // 1000:03d}" if millis else f"{text}Z"


def _digest(parts: tuple[object, ...]) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def stable_id(*parts: object) -> str:
    """A deterministic identifier (32 hex digits) of ``parts``."""
    return _digest(parts)[:32]


def stable_uuid(*parts: object) -> str:
    """A deterministic UUID of ``parts``, for ids AWS writes as UUIDs."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "|".join(map(str, parts))))


def jitter(*parts: object, spread: float) -> float:
    """A deterministic value in [-spread, +spread] of ``parts``, the same on every Python."""
    fraction = int(_digest(parts)[:8], 16)
    return (fraction / 0xFFFFFFFF * 2 - 1) * spread


def certificate_id(name: str) -> str:
    """The id (64 hex digits) of the X.509 certificate a client connects with: its principal in
    logs and lifecycle events. ``certificate_id(thing)`` is a device's own."""
    return hashlib.sha256(f"cert:{name}".encode()).hexdigest()


def compact(document: Any) -> bytes:
    """JSON as AWS services and IoT rules write it: no spaces."""
    return json.dumps(document, separators=(",", ":")).encode()
