"""Settings read once per container from the environment, validated so a typo fails loudly."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.settings import ConfigError, integer_setting, number_setting
from transform.sourcetypes import ALL_SOURCETYPES

__all__ = ["ConfigError", "Settings", "load_settings"]

# Splunk index names: lowercase letters, digits, underscore and hyphen, not starting with _ or -.
_INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")


@dataclass(frozen=True)
class Settings:
    """Everything the transform may be tuned by. Defaults suit a standard deployment."""

    default_index: str | None = None
    index_overrides: Mapping[str, str] = field(default_factory=dict)
    # Events stamped further ahead than this are re-stamped with the arrival time, because
    # Splunk would file them in the future (MAX_DAYS_HENCE) where no search finds them.
    max_future_skew_seconds: float = 86_400.0
    max_reingest_attempts: int = 3
    # A CloudWatch Logs payload that inflates beyond this is treated as hostile (gzip bomb).
    max_decompressed_bytes: int = 8 * 1024 * 1024
    response_limit_bytes: int = 6_000_000
    # False sends every record down the reference decoders alone (transform.fast says why
    # both exist); the differential test and the bench compare the two.
    fast_path: bool = True

    def index_for(self, sourcetype: str) -> str | None:
        """The index an event of this sourcetype goes to, or None to use the token's default."""
        return self.index_overrides.get(sourcetype, self.default_index)


def _index(value: str, what: str) -> str:
    if not _INDEX_NAME.match(value):
        raise ConfigError(f"{what}: {value!r} is not a valid Splunk index name")
    return value


def _parse_overrides(text: str) -> dict[str, str]:
    """Parse ``sourcetype=index`` pairs separated by commas (whitespace ignored)."""
    overrides: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        sourcetype, sep, index = (part.strip() for part in pair.partition("="))
        if not sep:
            raise ConfigError(f"SPLUNK_INDEX_OVERRIDES: {pair!r} is not sourcetype=index")
        if sourcetype not in ALL_SOURCETYPES:
            raise ConfigError(f"SPLUNK_INDEX_OVERRIDES: unknown sourcetype {sourcetype!r}")
        overrides[sourcetype] = _index(index, f"SPLUNK_INDEX_OVERRIDES[{sourcetype}]")
    return overrides


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build settings from environment variables (see README, 'Transform settings')."""
    default_index = environ.get("SPLUNK_INDEX", "").strip() or None
    return Settings(
        default_index=_index(default_index, "SPLUNK_INDEX") if default_index else None,
        index_overrides=_parse_overrides(environ.get("SPLUNK_INDEX_OVERRIDES", "")),
        max_future_skew_seconds=number_setting(
            environ, "MAX_FUTURE_SKEW_SECONDS", 86_400.0, 0.0, 30 * 86_400.0
        ),
        max_reingest_attempts=integer_setting(environ, "MAX_REINGEST_ATTEMPTS", 3, 1, 20),
        max_decompressed_bytes=integer_setting(
            environ, "MAX_DECOMPRESSED_BYTES", 8 * 1024 * 1024, 1024, 64 * 1024 * 1024
        ),
    )
