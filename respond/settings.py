"""The responder's configuration, from the environment the stack sets, validated at cold start."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.names import THING_NAME_PATTERN
from shared.settings import ConfigError, integer_setting

_GROUP = re.compile(THING_NAME_PATTERN, re.ASCII)
_ACTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,128}", re.ASCII)

DEFAULT_FLEET_CAP = 50


@dataclass(frozen=True)
class Settings:
    quarantine_group: str
    state_table: str
    idempotency_table: str
    stream_name: str
    protected_groups: frozenset[str] = frozenset()
    fleet_cap: int = DEFAULT_FLEET_CAP
    # Audit check name -> the stack's mitigation action for it.
    mitigation_actions: Mapping[str, str] = field(default_factory=dict)
    # How long a request_id is remembered, so a retried invocation does not act twice.
    idempotency_seconds: int = 86_400


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Settings from the environment; a missing or malformed value raises ConfigError."""
    return Settings(
        quarantine_group=_group(
            _required(environ, "QUARANTINE_THING_GROUP"), "QUARANTINE_THING_GROUP"
        ),
        state_table=_required(environ, "STATE_TABLE"),
        idempotency_table=_required(environ, "IDEMPOTENCY_TABLE"),
        stream_name=_required(environ, "DELIVERY_STREAM_NAME"),
        protected_groups=frozenset(
            _group(name, "PROTECTED_THING_GROUPS")
            for name in (
                part.strip() for part in environ.get("PROTECTED_THING_GROUPS", "").split(",")
            )
            if name
        ),
        fleet_cap=integer_setting(environ, "FLEET_ACTION_CAP", DEFAULT_FLEET_CAP, 1, 10_000),
        mitigation_actions=_mitigation_actions(environ.get("MITIGATION_ACTIONS", "")),
        idempotency_seconds=integer_setting(
            environ, "IDEMPOTENCY_SECONDS", 86_400, 60, 30 * 86_400
        ),
    )


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set; the stack sets it on the responder")
    return value


def _group(name: str, variable: str) -> str:
    if not _GROUP.fullmatch(name):
        raise ConfigError(f"{variable}: {name[:40]!r} is not a thing group name")
    return name


def _mitigation_actions(text: str) -> dict[str, str]:
    """``MITIGATION_ACTIONS``: a JSON object of audit check name -> mitigation action name."""
    if not text.strip():
        return {}
    try:
        mapping = json.loads(text)
    except ValueError:
        raise ConfigError("MITIGATION_ACTIONS is not a JSON object") from None
    if not isinstance(mapping, dict) or not all(
        isinstance(check, str) and isinstance(action, str) and _ACTION_NAME.fullmatch(action)
        for check, action in mapping.items()
    ):
        raise ConfigError("MITIGATION_ACTIONS must map audit check names to action names")
    return mapping
