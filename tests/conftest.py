"""pytest configuration: hypothesis profiles, and the same clean environment on every machine."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests.fakes import FakeFirehose
from tests.support import FakeLambdaContext
from transform import handler
from transform.config import Settings
from transform.handler import lambda_handler

# `make test` runs the property tests with HYPOTHESIS_EXAMPLES examples each (10,000 there);
# a plain `pytest` run uses fewer. Raise it for a longer soak, e.g. HYPOTHESIS_EXAMPLES=100000.
settings.register_profile(
    "project",
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=False,
    print_blob=True,  # a failure found at random can be replayed with @reproduce_failure
)
settings.load_profile("project")

# Variables of the shell running the tests that would send AWS calls to a real account or
# endpoint, or read a profile's region and endpoints; every test starts without them.
_AWS_LEAKS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
_LOOPBACK = "127.0.0.1,localhost"


@pytest.fixture(autouse=True)
def _clean_environment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a developer's or CI's shell holds must not change what a test sees.

    - loopback never goes through a proxy (the HEC stub is on 127.0.0.1);
    - AWS: fake credentials, no profile, no config or credentials file, no custom endpoint,
      so moto and Stubber see every call and nothing can reach a real account;
    - the handler's settings are the defaults, whatever ``SPLUNK_INDEX`` or a tuning variable
      says, and its re-ingest stream is an in-memory fake, except in the live suites, which
      send where the environment tells them to.
    """
    for name in ("NO_PROXY", "no_proxy"):
        current = os.environ.get(name)
        monkeypatch.setenv(name, f"{current},{_LOOPBACK}" if current else _LOOPBACK)
    for name in list(os.environ):
        if name in _AWS_LEAKS or name.startswith("AWS_ENDPOINT_URL"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    if request.node.get_closest_marker("live") is None:
        monkeypatch.setattr(handler, "SETTINGS", Settings())
        # Re-ingest goes to an in-memory stream: no test can reach AWS through the handler.
        monkeypatch.setattr(handler, "_firehose_client", FakeFirehose())


@pytest.fixture
def run_handler() -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Call the real Lambda handler with a fake context."""

    def run(event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = lambda_handler(event, FakeLambdaContext())
        return result

    return run
