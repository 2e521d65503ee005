"""What the opt-in live suites share: when they run, and a splunk-sdk connection."""

from __future__ import annotations

import os
from typing import Any

import pytest

REQUIRED = (
    "SPLUNK_URL",
    "SPLUNK_USERNAME",
    "SPLUNK_PASSWORD",
    "SPLUNK_HEC_URL",
    "SPLUNK_HEC_TOKEN",
)
# pytestmark of every live module: marked `live`, skipped unless a Splunk is configured, and
# all on one xdist worker (`make unit` runs `--dist loadgroup`): they share the app's macros.
LIVE = [
    pytest.mark.live,
    pytest.mark.xdist_group("live-splunk"),
    pytest.mark.skipif(
        not all(os.environ.get(name) for name in REQUIRED),
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
