"""What the opt-in live suites share: when they run, the warning they give, a connection."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import Any

import pytest

REQUIRED = (
    "SPLUNK_URL",
    "SPLUNK_USERNAME",
    "SPLUNK_PASSWORD",
    "SPLUNK_HEC_URL",
    "SPLUNK_HEC_TOKEN",
)
# What the live suites change on the Splunk they are pointed at: said whenever they are enabled.
CHANGES = """LIVE SPLUNK SUITE ENABLED: it changes the Splunk at SPLUNK_URL; use a throwaway one.
  * sends the demo's HEC events through SPLUNK_HEC_TOKEN (searched in SPLUNK_INDEX, default main);
  * creates one index per detection test, iot_<run id>_t<n>_<detection>, and leaves it there
    with its events (delete them, or the container, afterwards);
  * points the app's iot_defender_index macro at each of those indexes in turn, and sets a
    test's own macros; every macro is put back as it was when the module ends."""


class LiveSplunkWarning(UserWarning):
    """The live suites are about to change a real Splunk (see CHANGES)."""


def enabled(environ: Mapping[str, str]) -> bool:
    """Whether a Splunk is configured for the live suites."""
    return all(environ.get(name) for name in REQUIRED)


def warn_of_changes(environ: Mapping[str, str]) -> None:
    """Warn (pytest's warnings summary shows it) when the live suites will run."""
    if enabled(environ):
        warnings.warn(LiveSplunkWarning(CHANGES), stacklevel=2)


warn_of_changes(os.environ)

# pytestmark of every live module: marked `live`, skipped unless a Splunk is configured, and
# all on one xdist worker (`make unit` runs `--dist loadgroup`): they share the app's macros.
LIVE = [
    pytest.mark.live,
    pytest.mark.xdist_group("live-splunk"),
    pytest.mark.skipif(
        not enabled(os.environ),
        reason="live Splunk not configured: set " + ", ".join(REQUIRED),
    ),
]


def verify_tls() -> bool:
    return os.environ.get("SPLUNK_VERIFY_TLS", "false").lower() == "true"


def connect(**namespace: str) -> Any:
    """A splunklib service for SPLUNK_URL; `namespace` may set owner and app."""
    client = pytest.importorskip("splunklib.client")
    url = os.environ["SPLUNK_URL"].removeprefix("https://").removeprefix("http://")
    host, _, port = url.partition(":")
    return client.connect(
        host=host,
        port=int(port or 8089),
        username=os.environ["SPLUNK_USERNAME"],
        password=os.environ["SPLUNK_PASSWORD"],
        verify=verify_tls(),
        **namespace,
    )
