"""pytest configuration: hypothesis profiles, and a clean transform environment."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests.support import FakeLambdaContext
from transform.handler import lambda_handler

# `make test` runs the property tests with HYPOTHESIS_EXAMPLES examples each (10,000 there);
# a plain `pytest` run uses fewer. Raise it for a longer soak, e.g. HYPOTHESIS_EXAMPLES=100000.
settings.register_profile(
    "project",
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=False,
)
settings.load_profile("project")


@pytest.fixture
def run_handler() -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Call the real Lambda handler with a fake context."""

    def run(event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = lambda_handler(event, FakeLambdaContext())
        return result

    return run
