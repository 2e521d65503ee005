"""`iot-defender-splunk send`: NDJSON HEC events to the loopback HEC, through the CLI."""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from iot_defender_splunk import cli
from iot_defender_splunk.hec import batches
from tests.hec_server import Fault, HecStub
from tests.support import SAMPLES_DIR

TOKEN = "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"
EVENTS = SAMPLES_DIR / "hec_events" / "audit_and_metrics.ndjson"
WITH_INVALID = SAMPLES_DIR / "hec_events" / "with_invalid_lines.ndjson"


def lines_of(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture
def hec(monkeypatch: pytest.MonkeyPatch) -> Iterator[HecStub]:
    with HecStub(TOKEN) as stub:
        monkeypatch.setenv("SPLUNK_HEC_URL", stub.url)
        monkeypatch.setenv("SPLUNK_HEC_TOKEN", TOKEN)
        yield stub


def one_line(text: str) -> str:
    assert text.count("\n") == 1, text
    assert text.endswith("\n"), text
    assert "Traceback" not in text
    return text


def test_a_file_is_sent_in_order_and_acknowledged(hec, capsys):
    assert cli.main(["send", str(EVENTS)]) == 0
    assert hec.events == lines_of(EVENTS)
    out = capsys.readouterr().out
    assert f"sent 8 events in 1 batches to {hec.url}/services/collector/event" in out
    assert "acknowledged: Splunk confirmed every batch is indexed" in out
    assert "possible duplicates" not in out
    assert [r.content_encoding for r in hec.requests if r.path.endswith("/event")] == ["gzip"]


def test_stdin_is_read_when_no_file_or_a_dash_is_given(hec, monkeypatch):
    for argv in (["send"], ["send", "-"]):
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(EVENTS.read_bytes())))
        assert cli.main(argv) == 0
    assert hec.events == lines_of(EVENTS) * 2


def test_batches_follow_batch_bytes_without_splitting_an_event(hec, capsys):
    lines = EVENTS.read_bytes().splitlines()
    longest = max(len(line) for line in lines)
    assert cli.main(["send", str(EVENTS), "--batch-bytes", str(longest), "--no-gzip"]) == 0
    posts = [r for r in hec.requests if r.path.endswith("/event")]
    assert [r.events for r in posts] == [len(batch) for batch in batches(lines, longest)]
    assert len(posts) > 1
    assert {r.content_encoding for r in posts} == {None}
    assert hec.events == lines_of(EVENTS)


def test_invalid_lines_are_listed_and_nothing_is_sent(hec, capsys):
    assert cli.main(["send", str(WITH_INVALID)]) == 1
    err = one_line(capsys.readouterr().err)
    assert err == (
        "iot-defender-splunk send: error: 4 invalid lines: 2 (not JSON), "
        '4 (JSON list, not an object), 6 (no "event" key), 7 ("event" is blank); '
        "nothing sent (--skip-invalid leaves them out)\n"
    )
    assert hec.requests == []


def test_skip_invalid_sends_the_rest_and_says_what_it_left_out(hec, capsys):
    assert cli.main(["send", str(WITH_INVALID), "--skip-invalid"]) == 0
    kept = WITH_INVALID.read_bytes().splitlines()
    assert hec.events == [json.loads(kept[n - 1]) for n in (1, 3, 8)]
    err = one_line(capsys.readouterr().err)
    assert err.startswith("iot-defender-splunk send: warning: left out 4 invalid lines: 2 (")


def test_an_event_over_batch_bytes_is_an_invalid_line(hec, capsys):
    assert cli.main(["send", str(EVENTS), "--batch-bytes", "100"]) == 1
    assert "8 invalid lines: 1 (" in one_line(capsys.readouterr().err)
    assert hec.requests == []


def test_a_refused_token_shows_hec_text_once_and_is_not_retried(hec, monkeypatch, capsys):
    monkeypatch.setenv("SPLUNK_HEC_TOKEN", "not-the-token")
    assert cli.main(["send", str(EVENTS)]) == 1
    captured = capsys.readouterr()
    assert one_line(captured.err) == (
        "iot-defender-splunk send: error: Invalid token (HTTP 403, code 4)\n"
    )
    assert "sent 0 events in 0 batches" in captured.out
    assert len(hec.requests) == 1
    assert "not-the-token" not in captured.out + captured.err


def test_options_win_over_the_environment(hec, monkeypatch):
    monkeypatch.setenv("SPLUNK_HEC_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SPLUNK_HEC_TOKEN", "stale")
    assert cli.main(["send", str(EVENTS), "--hec-url", hec.url, "--hec-token", TOKEN]) == 0
    assert len(hec.events) == 8


@pytest.mark.parametrize(
    ("unset", "message"),
    [
        ("SPLUNK_HEC_URL", "no HEC URL: give --hec-url or set SPLUNK_HEC_URL"),
        ("SPLUNK_HEC_TOKEN", "no HEC token: set SPLUNK_HEC_TOKEN (or give --hec-token)"),
    ],
)
def test_a_missing_url_or_token_is_one_clear_line(hec, monkeypatch, capsys, unset, message):
    monkeypatch.delenv(unset)
    assert cli.main(["send", str(EVENTS)]) == 1
    assert one_line(capsys.readouterr().err) == f"iot-defender-splunk send: error: {message}\n"


def test_an_unusable_url_is_one_clear_line(hec, capsys):
    assert cli.main(["send", str(EVENTS), "--hec-url", "splunk:8088"]) == 1
    assert "HEC url must be an absolute http:// or https:// URL" in one_line(
        capsys.readouterr().err
    )


def test_a_port_out_of_range_is_refused_before_any_connection(hec, capsys):
    assert cli.main(["send", str(EVENTS), "--hec-url", "https://127.0.0.1:99999"]) == 1
    assert one_line(capsys.readouterr().err) == (
        "iot-defender-splunk send: error: HEC url has no usable port: https://127.0.0.1:99999\n"
    )


def test_a_missing_file_is_one_clear_line(hec, tmp_path, capsys):
    assert cli.main(["send", str(tmp_path / "nope.ndjson")]) == 1
    assert one_line(capsys.readouterr().err).endswith("No such file or directory\n")


def test_an_empty_input_is_an_error_not_a_silent_success(hec, tmp_path, capsys):
    empty = tmp_path / "empty.ndjson"
    empty.write_text("\n\n", encoding="utf-8")
    assert cli.main(["send", str(empty)]) == 1
    assert (
        one_line(capsys.readouterr().err) == "iot-defender-splunk send: error: no events to send\n"
    )


def test_insecure_warns_on_stderr(hec, capsys):
    assert cli.main(["send", str(EVENTS), "--insecure"]) == 0
    err = one_line(capsys.readouterr().err)
    assert err.startswith("iot-defender-splunk send: warning: TLS certificate verification is off")


def test_retries_after_dropped_connections_are_reported_as_possible_duplicates(hec, capsys):
    hec.inject(Fault.BUSY, Fault.DROP_AFTER_INDEXING)
    assert cli.main(["send", str(EVENTS)]) == 0
    out = capsys.readouterr().out
    assert "possible duplicates: up to 8 events, from 1 batches sent again" in out
    copies = Counter(json.dumps(event, sort_keys=True) for event in hec.events)
    assert set(copies.values()) == {2}  # the dropped attempt was indexed: every event twice


def test_an_unconfirmed_batch_fails_the_send_and_is_reported(monkeypatch, capsys):
    with HecStub(TOKEN, confirm_acks=False) as stub:
        monkeypatch.setenv("SPLUNK_HEC_TOKEN", TOKEN)
        code = cli.main(["send", str(EVENTS), "--hec-url", stub.url, "--ack-timeout", "0.2"])
    assert code == 1
    captured = capsys.readouterr()
    assert "unconfirmed: 1 batches not acknowledged in time" in captured.out
    assert "indexer acknowledgement timed out after 0.2 s" in one_line(captured.err)


def test_help_names_the_token_variable(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["send", "--help"])
    assert exited.value.code == 0
    assert "SPLUNK_HEC_TOKEN" in capsys.readouterr().out


@pytest.mark.parametrize("option", ["--batch-bytes", "--timeout", "--ack-timeout"])
def test_a_non_positive_number_is_a_usage_error(option, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["send", str(EVENTS), option, "0"])
    assert exited.value.code == 2
    assert "must be positive" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--timeout", "inf", "argument --timeout: must be positive and at most 86400, not inf"),
        ("--ack-timeout", "1e300", "must be positive and at most 86400, not 1e300"),
        ("--timeout", "soon", "argument --timeout: 'soon' is not a number of seconds"),
        ("--batch-bytes", "1MB", "argument --batch-bytes: '1MB' is not a whole number of bytes"),
        ("--batch-bytes", "838860801", "at most 838860800 (HEC's max_content_length)"),
    ],
)
def test_an_unusable_number_is_one_usage_line_before_anything_is_sent(
    option, value, message, hec, capsys
):
    with pytest.raises(SystemExit) as exited:
        cli.main(["send", str(EVENTS), option, value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("iot-defender-splunk send: error: ")
    assert message in err.splitlines()[-1]
    assert hec.events == []


def test_what_the_demo_writes_sends_as_the_demo_sends_it(tmp_path, monkeypatch):
    """Differential: the demo's own HEC send and `send` of the files it writes store the same
    events (the demo sends the pipeline's events, then the response step's audit event)."""
    out = tmp_path / "demo"
    runs = (
        ["demo", "--out-dir", str(out)],
        ["send", str(out / "events.ndjson")],
        ["send", str(out / "response.ndjson")],
    )
    stored = []
    for argv in runs:
        with HecStub(TOKEN) as stub:
            monkeypatch.setenv("SPLUNK_HEC_URL", stub.url)
            monkeypatch.setenv("SPLUNK_HEC_TOKEN", TOKEN)
            assert cli.main(argv) == 0
            stored.append(stub.events)
    written = lines_of(out / "events.ndjson"), lines_of(out / "response.ndjson")
    assert stored[1:] == list(written)
    assert stored[0] == written[0] + written[1]
