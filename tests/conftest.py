"""pytest configuration: hypothesis profiles, and the same clean environment on every machine."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from respond import handler as respond_handler
from tests.fakes import FakeFirehose
from tests.support import FakeLambdaContext
from transform import handler as transform_handler
from transform.config import Settings, load_settings
from transform.handler import Runtime, container_runtime, make_handler

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


class _ReadRecorder(Mapping[str, str]):
    """An empty environment that notes every variable asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


@functools.cache
def transform_variables() -> frozenset[str]:
    """The environment variables the transform's settings read, found by asking it."""
    environ = _ReadRecorder()
    load_settings(environ)
    return frozenset(environ.asked)


@pytest.fixture(autouse=True)
def _clean_environment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a developer's or CI's shell holds must not change what a test sees.

    - loopback never goes through a proxy (the HEC stub is on 127.0.0.1);
    - AWS: fake credentials, no profile, no config or credentials file, no custom endpoint,
      so moto and Stubber see every call and nothing can reach a real account;
    - the transform's settings are the defaults, whatever ``SPLUNK_INDEX`` or a tuning
      variable says, except in the live suites, which send where the environment tells them to.
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
        for name in transform_variables():
            monkeypatch.delenv(name, raising=False)
    container_runtime.cache_clear()  # every test is a fresh container: its settings, read anew


@pytest.fixture(autouse=True)
def _lambda_logs_to_this_sessions_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Lambda loggers keep the ``sys.stdout`` they were imported under. One pytest
    session per process never notices; a second one in the same process (mutmut runs
    several) inherits a stream the first one closed, and swapping it out for a local run's
    sink (the simulator, the demo's response step) fails flushing it. Each test gives them
    the stdout it runs with, as Lambda's is always open."""
    for module in (transform_handler, respond_handler):
        stream_handler = module.logger.registered_handler
        if isinstance(stream_handler, logging.StreamHandler):
            monkeypatch.setattr(stream_handler, "stream", sys.stdout)


@pytest.fixture
def run_handler() -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Call the real Lambda handler with a fake context, default settings and an in-memory
    re-ingest stream: no test reaches AWS through the handler."""
    lambda_handler = make_handler(Runtime(Settings(), firehose=FakeFirehose()))

    def run(event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = lambda_handler(event, FakeLambdaContext())
        return result

    return run
