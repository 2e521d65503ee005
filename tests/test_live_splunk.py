"""Opt-in: the demo's events into a real Splunk, then searched back with splunk-sdk.

Runs only when SPLUNK_URL, SPLUNK_USERNAME, SPLUNK_PASSWORD, SPLUNK_HEC_URL and
SPLUNK_HEC_TOKEN are set (the GitHub Actions workflow `live-splunk.yml` sets them against the
splunk/splunk container). The HEC token needs indexer acknowledgement, like Firehose's.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from iot_defender_splunk import cli
from iot_defender_splunk.deployment import APP_ID, Connection, Hec, Splunk, Status, verify
from tests.live import LIVE, connect, verify_tls

pytestmark = LIVE


def _search_count(query: str) -> int:
    splunklib_results = pytest.importorskip("splunklib.results")
    service = connect()
    stream = service.jobs.oneshot(
        query, output_mode="json", earliest_time="-30d", latest_time="+1d"
    )
    rows = [r for r in splunklib_results.JSONResultsReader(stream) if isinstance(r, dict)]
    return int(rows[0]["count"]) if rows else 0


def test_demo_events_are_indexed_with_their_own_time_and_sourcetype(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "SPLUNK_HEC_VERIFY_TLS" not in os.environ:
        monkeypatch.setenv("SPLUNK_HEC_VERIFY_TLS", "false")
    # Only events indexed from now on count: earlier runs' copies of the same demo must not.
    sent_after = int(time.time()) - 1
    out = tmp_path / "demo.ndjson"
    assert cli.main(["demo", "--out", str(out)]) == 0
    sent = sum(1 for _ in out.open(encoding="utf-8"))
    index = os.environ.get("SPLUNK_INDEX", "main")
    query = (
        f'search index={index} sourcetype="aws:iot:*" source="arn:aws:*" '
        f"_index_earliest={sent_after} | where _time < now() - 3600 | stats count"
    )
    deadline = time.monotonic() + 120
    count = _search_count(query)
    while time.monotonic() < deadline and count < sent:
        time.sleep(5)
        count = _search_count(query)
    # Every event, each with its own (past) time: one missing or re-stamped is a failure.
    assert count == sent


def test_verify_finds_the_app_its_searches_and_hec_acknowledgement_on_the_real_splunk() -> None:
    """`verify` against the real splunkd (the stand-in's model): the packaged app at this
    version, every enabled saved search parses and dry-runs, and the probe is acknowledged.
    The index checks depend on the site's index and are not asserted here."""
    connection = Connection(
        os.environ["SPLUNK_URL"],
        username=os.environ["SPLUNK_USERNAME"],
        password=os.environ["SPLUNK_PASSWORD"],
        verify_tls=verify_tls(),
    )
    hec_tls = os.environ.get("SPLUNK_HEC_VERIFY_TLS", "false").lower() == "true"
    hec = Hec(os.environ["SPLUNK_HEC_URL"], os.environ["SPLUNK_HEC_TOKEN"], hec_tls, True)
    report = verify(Splunk(connection), expected_version=cli.version(), since="24h", hec=hec)
    rows = {(finding.area, finding.subject): finding for finding in report.findings}
    assert rows[("App", APP_ID)].status == Status.OK, rows[("App", APP_ID)]
    assert rows[("HEC", "acknowledgement")].status == Status.OK, rows[("HEC", "acknowledgement")]
    searches = [finding for finding in report.findings if finding.area == "Searches"]
    assert [finding.status for finding in searches] == [Status.OK], searches
