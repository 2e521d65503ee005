"""``iot-defender-splunk simulate``: the simulated fleet's HEC events to a file, stdout or HEC,
and one clear line for every mistake."""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from iot_defender_splunk import cli
from iot_defender_splunk.commands import simulate
from iot_defender_splunk.simulator import (
    Invocation,
    run_transform,
    simulate_fleet,
    stream_transform,
)
from tests.hec_server import HecStub

TOKEN = "00000000-0000-4000-8000-0000005105a7"
END = "2026-11-23T02:00:00Z"
END_SECONDS = 1_795_399_200.0
SMALL = ["--devices", "5", "--hours", "2", "--seed", "3", "--end", END]


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


@pytest.mark.parametrize("detect", [True, False], ids=["detect", "no-detect"])
def test_writes_exactly_the_events_the_list_run_makes(tmp_path: Path, detect: bool) -> None:
    # The command streams; simulate_fleet + run_transform hold the whole run: same bytes.
    out = tmp_path / "events" / "fleet.ndjson"
    flags = [] if detect else ["--no-detect"]
    assert cli.main(["simulate", *SMALL, *flags, "--out", str(out)]) == 0
    simulation = simulate_fleet(devices=5, hours=2, seed=3, end=END_SECONDS, detect=detect)
    expected = run_transform(simulation.batches).events
    assert out.read_bytes() == b"".join(event + b"\n" for event in expected)
    assert [p.name for p in out.parent.iterdir()] == ["fleet.ndjson"], "no partial file left"


def test_no_detect_sends_device_reports_and_the_index_reaches_every_event(
    tmp_path: Path,
) -> None:
    out = tmp_path / "fleet.ndjson"
    assert (
        cli.main(["simulate", *SMALL, "--no-detect", "--index", "iot_lab", "--out", str(out)]) == 0
    )
    events = [json.loads(line) for line in _lines(out)]
    assert {e["index"] for e in events} == {"iot_lab"}
    origins = {
        e["fields"]["origin"] for e in events if e["sourcetype"] == "aws:iot:defender:metric"
    }
    assert origins == {"device-report"}


def test_standard_output_and_times_that_end_now(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    before = time.time()
    assert cli.main(["simulate", "--devices", "2", "--hours", "1", "--out", "-"]) == 0
    captured = capsysbinary.readouterr()
    times = [json.loads(line)["time"] for line in captured.out.splitlines()]
    # The metric stream stamps a datapoint with its minute, which may open before the start.
    assert before - 3600 - 60 <= min(times)
    assert max(times) <= time.time()
    assert b"incidents" not in captured.out
    assert b"open-port on cam-0001" in captured.err


def test_sends_to_hec_and_waits_for_acks(capsys: pytest.CaptureFixture[str]) -> None:
    with HecStub(token=TOKEN, use_ack=True) as hec:
        command = ["simulate", *SMALL, "--hec-url", hec.url, "--hec-token", TOKEN]
        assert cli.main(command) == 0
        received = hec.events
    simulation = simulate_fleet(devices=5, hours=2, seed=3, end=END_SECONDS)
    expected = [json.loads(line) for line in run_transform(simulation.batches).events]
    assert received == expected
    assert f"sent {len(expected)} events" in capsys.readouterr().err


def test_events_reach_hec_while_the_simulation_is_still_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    received_before: list[int] = []  # events HEC held as each invocation was handed on

    with HecStub(token=TOKEN) as hec:

        def watched(*args: Any, **kwargs: Any) -> Iterator[Invocation]:
            for invocation in stream_transform(*args, **kwargs):
                received_before.append(len(hec.events))
                yield invocation

        monkeypatch.setattr(simulate, "stream_transform", watched)
        command = ["simulate", *SMALL, "--devices", "20", "--hec-url", hec.url, "--hec-token"]
        assert cli.main([*command, TOKEN]) == 0
        total = len(hec.events)
    assert 0 < received_before[-1] < total, "batches were posted before the last invocation"


def test_an_interrupted_run_keeps_the_older_file_and_leaves_no_partial_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fleet.ndjson"
    out.write_bytes(b'{"older":"run"}\n')

    def interrupted(*args: Any, **kwargs: Any) -> Iterator[Invocation]:
        invocations = stream_transform(*args, **kwargs)
        yield next(invocations)
        raise KeyboardInterrupt

    monkeypatch.setattr(simulate, "stream_transform", interrupted)
    assert cli.main(["simulate", *SMALL, "--out", str(out)]) == 130
    assert out.read_bytes() == b'{"older":"run"}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["fleet.ndjson"]
    assert capsys.readouterr().err.splitlines()[-1] == "iot-defender-splunk simulate: interrupted"


def _peak_bytes(hours: str, out: Path) -> int:
    tracemalloc.start()
    try:
        assert (
            cli.main(["simulate", *SMALL, "--devices", "4", "--hours", hours, "--out", str(out)])
            == 0
        )
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_commands_memory_does_not_grow_with_the_hours_simulated(tmp_path: Path) -> None:
    _peak_bytes("0.5", tmp_path / "warm.ndjson")  # imports and caches out of the way
    one_hour = _peak_bytes("1", tmp_path / "one.ndjson")
    eight_hours = _peak_bytes("8", tmp_path / "eight.ndjson")
    assert (tmp_path / "eight.ndjson").stat().st_size > 4 * (tmp_path / "one.ndjson").stat().st_size
    # Held in memory, eight hours of events take several times one hour's peak.
    assert eight_hours < 1.5 * one_hour


def test_a_refused_token_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with HecStub(token=TOKEN) as hec:
        command = ["simulate", *SMALL, "--hec-url", hec.url, "--hec-token", "wrong"]
        assert cli.main(command) == 1
    (line,) = capsys.readouterr().err.splitlines()[-1:]
    assert line.startswith("iot-defender-splunk simulate: error: Splunk HEC refused the events")
    assert "Invalid token" in line


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--devices", "0", "--out", "x"], "argument --devices: must be between 1 and"),
        (["--devices", "many", "--out", "x"], "'many' is not a whole number"),
        (["--hours", "-1", "--out", "x"], "argument --hours: must be more than 0"),
        (["--hours", "0", "--out", "x"], "argument --hours: must be more than 0"),
        (["--end", "yesterday", "--out", "x"], "'yesterday' is not an ISO-8601 time"),
    ],
)
def test_bad_arguments_are_usage_errors(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["simulate", *arguments])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("iot-defender-splunk simulate: error: ")
    assert message in last


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "give either --out FILE or --hec-url URL"),
        (
            ["--out", "x", "--hec-url", "https://splunk:8088"],
            "give either --out FILE or --hec-url URL",
        ),
        (["--hec-url", "https://splunk:8088"], "--hec-url needs --hec-token (or SPLUNK_HEC_TOKEN)"),
        (
            ["--hec-url", "ftp://splunk", "--hec-token", TOKEN],
            "HEC url must be an absolute http:// or https:// URL",
        ),
        (
            ["--out", "x", "--index", "Main Index"],
            "--index: 'Main Index' is not a valid Splunk index name",
        ),
        (
            ["--out", "x", "--end", "2099-01-01T00:00:00Z"],
            "--end is more than a day ahead: the transform would re-stamp it",
        ),
        (
            ["--out", "x", "--end", "2014-06-01T00:00:00+02:00"],
            "--end and --hours reach before 2015, which the transform refuses",
        ),
    ],
)
def test_mistakes_are_one_line_and_exit_1(
    arguments: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SPLUNK_HEC_TOKEN", raising=False)
    assert cli.main(["simulate", "--devices", "1", "--hours", "1", *arguments]) == 1
    assert capsys.readouterr().err == f"iot-defender-splunk simulate: error: {message}\n"


def test_an_unwritable_output_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert cli.main(["simulate", *SMALL, "--out", str(blocker / "events.ndjson")]) == 1
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .startswith(
            f"iot-defender-splunk simulate: error: cannot write {blocker / 'events.ndjson'}"
        )
    )


def test_help_describes_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["simulate", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for option in ("--devices", "--hours", "--seed", "--end", "--no-detect", "--out", "--hec-url"):
        assert option in out


def test_a_finished_run_writes_only_its_summary_on_a_non_terminal_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["simulate", *SMALL, "--out", str(tmp_path / "fleet.ndjson")]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("5 devices, 2 h to 2026-11-23T02:00:00Z")
    assert "" not in lines


def test_a_directory_as_output_is_refused_before_simulating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(simulate, "stream_fleet", None)  # simulating would fail loudly
    assert cli.main(["simulate", *SMALL, "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err == (
        f"iot-defender-splunk simulate: error: --out {tmp_path} is a directory; name a file in it\n"
    )
    assert list(tmp_path.iterdir()) == []
