"""`make demo`: the sample messages through the real handler, to a file and to a HEC."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from iot_defender_splunk import cli
from tests.hec_server import HecStub
from tests.support import fixture_paths
from transform.sourcetypes import ALL_SOURCETYPES

TOKEN = "00000000-0000-4000-8000-00000000d3m0"


def _events(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_demo_writes_every_sourcetype_and_summarises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SPLUNK_HEC_URL", raising=False)
    out = tmp_path / "hec.ndjson"

    assert cli.main(["demo", "--out", str(out)]) == 0

    events = _events(out)
    sourcetypes = Counter(str(e["sourcetype"]) for e in events)
    assert set(sourcetypes) == ALL_SOURCETYPES
    printed = capsys.readouterr().out
    assert f"{'total':<34}{len(events):>8}" in printed
    assert f"{'metrics_export':<26}{len(fixture_paths('metrics_export')):>8}" in printed
    assert "Splunk: not configured" in printed
    assert (tmp_path / "lambda-stdout.log").read_text(encoding="utf-8").count("IotDefenderSplunk")


def test_demo_sends_to_hec_with_a_channel_and_waits_for_acks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "hec.ndjson"
    with HecStub(token=TOKEN, use_ack=True) as hec:
        monkeypatch.setenv("SPLUNK_HEC_URL", hec.url)
        monkeypatch.setenv("SPLUNK_HEC_TOKEN", TOKEN)

        assert cli.main(["demo", "--out", str(out)]) == 0

        received = hec.events
        requests = hec.requests
    assert received == _events(out)
    assert all(r.channel for r in requests if r.path.endswith("/event"))
    assert f"sent {len(received)} events" in capsys.readouterr().out


def test_demo_reports_a_refused_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with HecStub(token=TOKEN) as hec:
        monkeypatch.setenv("SPLUNK_HEC_URL", hec.url)
        monkeypatch.setenv("SPLUNK_HEC_TOKEN", "wrong-token")
        assert cli.main(["demo", "--out", str(tmp_path / "hec.ndjson")]) == 1
    assert "Invalid token" in capsys.readouterr().err
