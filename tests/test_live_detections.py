"""Opt-in: every detection's test datasets replayed into a real Splunk, then its search.

Needs a Splunk with the app installed (`make package`, then install the .tgz) and the same
variables as tests/test_live_splunk.py; the GitHub Actions workflow `live-splunk.yml` does all
of it against the splunk/splunk container. Each dataset goes into an index of its own, new in
every run (the app's `iot_defender_index` macro points at it and is restored at the end),
shifted in time so that the dataset's reference time is now; the Baseline reports run first,
then the detection's saved search, and its result is compared with the `expected` block of the
detection's YAML. A test may run with macro definitions of its own (`macros:`), e.g. the audit
frequency of a weekly site; they are put back afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from appbuild.build_app import APP_ID, DETECTIONS_DIR, REPO, REPORTS_DIR, load_definitions
from appbuild.detection_data import REFERENCE_TIME
from iot_defender_splunk.hec import HecClient
from tests.live import LIVE, connect, verify_tls

pytestmark = LIVE

DEFINITIONS = load_definitions(DETECTIONS_DIR, REPORTS_DIR)
BASELINES = [d for d in DEFINITIONS if d.spec["type"] == "Baseline"]
CASES = [
    (definition, number, test)
    for definition in DEFINITIONS
    for number, test in enumerate(definition.spec.get("tests", []))
]  # fmt: skip


# Every run writes into indexes of its own, so no earlier run's events can satisfy a count.
RUN_ID = uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def service() -> Iterator[Any]:
    """The app's namespace; the `iot_defender_index` macro is put back as it was afterwards."""
    connected = connect(owner="nobody", app=APP_ID)
    if APP_ID not in [app.name for app in connected.apps]:
        pytest.fail(f"the {APP_ID} app is not installed on {os.environ['SPLUNK_URL']}")
    macro = connected.confs["macros"]["iot_defender_index"]
    original = macro.content["definition"]
    try:
        yield connected
    finally:
        macro.update(definition=original)


def shifted_events(dataset: str, index: str, now: float) -> Iterator[bytes]:
    """The dataset's HEC events, moved so its reference time is `now`, into `index`."""
    shift = now - REFERENCE_TIME
    with (REPO / dataset).open(encoding="utf-8") as handle:
        for line in handle:
            event = json.loads(line)
            event["time"] = float(event["time"]) + shift
            event["index"] = index
            yield json.dumps(event).encode()


def results(job: Any) -> list[dict[str, Any]]:
    reader = pytest.importorskip("splunklib.results")
    while not job.is_done():
        time.sleep(1)
    stream = job.results(output_mode="json", count=0)
    return [row for row in reader.JSONResultsReader(stream) if isinstance(row, dict)]


def run_saved_search(service: Any, name: str) -> list[dict[str, Any]]:
    saved = service.saved_searches[name]
    return results(saved.dispatch(force_dispatch=True, trigger_actions=False))


def wait_indexed(service: Any, index: str, expected: int) -> None:
    deadline = time.monotonic() + 180
    count = -1
    while time.monotonic() < deadline:
        job = service.jobs.create(
            f"| tstats count where index={index}", earliest_time="0", latest_time="+1d"
        )
        rows = results(job)
        count = int(rows[0]["count"]) if rows else 0
        if count >= expected:
            break
        time.sleep(3)
    assert count == expected, f"{count} of {expected} events indexed in {index}"


@contextlib.contextmanager
def macro_overrides(service: Any, overrides: dict[str, str]) -> Iterator[None]:
    """The test's own macro definitions (a site setting such as the audit frequency), put back
    as they were afterwards."""
    macros = service.confs["macros"]
    originals = {name: macros[name].content["definition"] for name in overrides}
    try:
        for name, definition in overrides.items():
            macros[name].update(definition=definition)
        yield
    finally:
        for name, definition in originals.items():
            macros[name].update(definition=definition)


def values(cell: Any) -> list[str]:
    """A result cell as strings: multivalue cells come back as lists."""
    return [str(v) for v in cell] if isinstance(cell, list) else [str(cell)]


@pytest.mark.parametrize(
    ("definition", "number", "test"),
    CASES,
    ids=[f"{d.path.stem}:{t['name']}" for d, _, t in CASES],
)
def test_detection_finds_its_true_positive(
    service: Any, definition: Any, number: int, test: dict[str, Any]
) -> None:
    # One fresh index per dataset: a detection's datasets must not see each other.
    index = f"iot_{RUN_ID}_t{number}_" + re.sub(r"[^a-z0-9]", "_", definition.path.stem)[:50]
    service.indexes.create(index)
    service.confs["macros"]["iot_defender_index"].update(definition=f"index={index}")
    events = list(shifted_events(test["dataset"], index, time.time() - 60))
    hec = HecClient(
        os.environ["SPLUNK_HEC_URL"], os.environ["SPLUNK_HEC_TOKEN"], verify_tls=verify_tls()
    )
    hec.send(events)
    wait_indexed(service, index, len(events))
    with macro_overrides(service, test.get("macros", {})):
        for baseline in BASELINES:
            run_saved_search(service, baseline.name)
        rows = run_saved_search(service, definition.name)

    expected = test["expected"]
    assert len(rows) == expected["result_count"], rows
    for field, value in expected.get("fields", {}).items():
        assert any(str(value) in values(row.get(field)) for row in rows), (field, value, rows)
