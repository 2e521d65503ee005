"""`iot-defender-splunk verify` against the loopback splunkd stand-in and HEC stub: every check
OK on a healthy deployment, and each failure mode its own FAIL or WARN row and exit status."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from appbuild.build_app import app_version
from iot_defender_splunk import cli
from iot_defender_splunk.deployment import (
    Connection,
    Finding,
    Hec,
    Report,
    Splunk,
    Status,
    verify,
)
from tests.hec_server import HecStub, refusing_url
from tests.loopback_server import Request
from tests.splunk_rest_stub import (
    PASSWORD,
    USERNAME,
    SplunkRestStub,
    SplunkState,
    StubApp,
    StubEvent,
    StubIndex,
    healthy_state,
)

HEC_TOKEN = "2f4e6a8c-1b3d-4f5a-9c7e-0d2b4f6a8c1e"
BEARER = "eyJraWQiOiJzcGx1bmsuc2VjcmV0IiwiYWxnIjoiSFM1MTIifQ.lab-token"


@dataclass
class Deployment:
    splunk: SplunkRestStub
    hec: HecStub

    @property
    def state(self) -> SplunkState:
        return self.splunk.state

    def report(self, *, send_probe: bool = False, since: str = "24h") -> Report:
        connection = Connection(self.splunk.url, username=USERNAME, password=PASSWORD)
        hec = Hec(self.hec.url, HEC_TOKEN, send_probe=send_probe)
        return verify(Splunk(connection), expected_version=cli.version(), since=since, hec=hec)


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    with SplunkRestStub(healthy_state(cli.version())) as splunk, HecStub(HEC_TOKEN) as hec:
        yield Deployment(splunk, hec)


@pytest.fixture
def environment(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> Deployment:
    monkeypatch.setenv("SPLUNK_URL", deployment.splunk.url)
    monkeypatch.setenv("SPLUNK_USERNAME", USERNAME)
    monkeypatch.setenv("SPLUNK_PASSWORD", PASSWORD)
    monkeypatch.setenv("SPLUNK_HEC_URL", deployment.hec.url)
    monkeypatch.setenv("SPLUNK_HEC_TOKEN", HEC_TOKEN)
    for name in ("SPLUNK_TOKEN", "SPLUNK_VERIFY_TLS", "SPLUNK_HEC_VERIFY_TLS"):
        monkeypatch.delenv(name, raising=False)
    return deployment


def _row(report: Report, area: str, subject: str) -> Finding:
    (finding,) = [f for f in report.findings if (f.area, f.subject) == (area, subject)]
    return finding


def _calls(deployment: Deployment, endpoint: str) -> list[Request]:
    return [r for r in deployment.splunk.requests if r.path.rstrip("/").endswith(endpoint)]


def _statuses(report: Report) -> set[Status]:
    return {finding.status for finding in report.findings}


def test_a_healthy_deployment_passes_every_check(deployment: Deployment) -> None:
    report = deployment.report(send_probe=True)
    assert _statuses(report) == {Status.OK}
    assert (
        _row(report, "App", "iot_defender_security").detail == f"version {cli.version()}, enabled"
    )
    assert _row(report, "Index", "iot_security").detail == "8 events in the last 24h"
    assert _row(report, "HEC", "acknowledgement").status == Status.OK
    assert not report.failed(strict=True)


def test_the_app_version_expected_is_the_packaged_apps() -> None:
    """The toolkit and the app are released together: one version for both."""
    assert cli.version() == app_version()


def test_fired_detections_are_the_apps_within_the_window(deployment: Deployment) -> None:
    fired = {firing.name: firing.count for firing in deployment.report().firings}
    assert fired == {"IoT - New Listening Port On Device": 2, "IoT - Response Action Failed": 1}
    assert deployment.report(since="7d").firings[-1].name == "IoT - Risky Port Listening"


def test_every_enabled_saved_search_is_parsed_and_the_readers_are_dry_run(
    deployment: Deployment,
) -> None:
    report = deployment.report()
    enabled = [s for s in deployment.state.saved_searches if not s.disabled]
    parsed = _calls(deployment, "/search/v2/parser")
    assert len(parsed) == len(enabled)
    jobs = [request.params() for request in _calls(deployment, "/search/v2/jobs")]
    dry_runs = [job for job in jobs if job["earliest_time"] == "0" and job["latest_time"] == "1"]
    assert all("outputlookup" not in job["search"] for job in dry_runs)
    writers = sum("outputlookup" in s.search for s in enabled)
    assert len(dry_runs) == len(enabled) - writers
    summary = _row(report, "Searches", f"{len(deployment.state.saved_searches)} saved searches")
    assert f"{writers} parsed only (they write: outputlookup)" in summary.detail


def test_a_missing_app_fails_and_skips_what_needs_it(deployment: Deployment) -> None:
    deployment.state.app = None
    report = deployment.report()
    assert _row(report, "App", "iot_defender_security") == Finding(
        "App", "iot_defender_security", Status.FAIL, "not installed"
    )
    assert _row(report, "Data", "all").status == Status.SKIP
    assert report.failed()


def test_an_old_app_version_fails(deployment: Deployment) -> None:
    deployment.state.app = StubApp("0.0.9")
    app = _row(deployment.report(), "App", "iot_defender_security")
    assert (app.status, app.detail) == (
        Status.FAIL,
        f"version 0.0.9 installed, {cli.version()} expected",
    )


def test_a_disabled_app_fails(deployment: Deployment) -> None:
    deployment.state.app = StubApp(cli.version(), disabled=True)
    assert _row(deployment.report(), "App", "iot_defender_security").status == Status.FAIL


def test_a_macro_naming_a_missing_index_fails(deployment: Deployment) -> None:
    deployment.state.macros["iot_defender_index"] = "(index=iot_security OR index=iot_ops)"
    report = deployment.report()
    assert _row(report, "Index", "iot_ops") == Finding(
        "Index", "iot_ops", Status.FAIL, "does not exist"
    )
    assert _row(report, "Index", "iot_security").status == Status.OK
    assert report.failed()


def test_a_wildcard_macro_checks_every_index_it_matches(deployment: Deployment) -> None:
    deployment.state.macros["iot_defender_index"] = 'index="iot_*"'
    deployment.state.indexes["iot_ops"] = StubIndex()
    report = deployment.report()
    assert _row(report, "Index", "iot_security").status == Status.OK
    assert _row(report, "Index", "iot_ops") == Finding(
        "Index", "iot_ops", Status.WARN, "no events in the last 24h"
    )
    assert not report.failed()
    assert report.failed(strict=True)


def test_an_empty_index_fails(deployment: Deployment) -> None:
    deployment.state.events = [e for e in deployment.state.events if e.index != "iot_security"]
    report = deployment.report()
    assert _row(report, "Index", "iot_security") == Finding(
        "Index", "iot_security", Status.FAIL, "no events in the last 24h"
    )
    assert report.failed()


def test_events_older_than_the_window_do_not_count(deployment: Deployment) -> None:
    two_days_ago = time.time() - 2 * 86400
    deployment.state.events = [
        StubEvent(e.index, e.sourcetype, two_days_ago) for e in deployment.state.events
    ]
    assert _row(deployment.report(), "Index", "iot_security").status == Status.FAIL
    assert _row(deployment.report(since="3d"), "Index", "iot_security").status == Status.OK


def test_a_disabled_index_fails(deployment: Deployment) -> None:
    deployment.state.indexes["iot_security"] = StubIndex(disabled=True)
    row = _row(deployment.report(), "Index", "iot_security")
    assert (row.status, row.detail) == (Status.FAIL, "disabled")


def test_a_macro_that_names_no_index_fails(deployment: Deployment) -> None:
    deployment.state.macros["iot_defender_index"] = "sourcetype=aws:iot:*"
    row = _row(deployment.report(), "Index", "iot_defender_index")
    assert (row.status, row.detail) == (Status.FAIL, "names no index: sourcetype=aws:iot:*")


def test_a_missing_index_macro_fails(deployment: Deployment) -> None:
    del deployment.state.macros["iot_defender_index"]
    row = _row(deployment.report(), "Index", "iot_defender_index")
    assert (row.status, row.detail) == (Status.FAIL, "macro not found in the app")


def test_an_unhealthy_hec_fails() -> None:
    with (
        SplunkRestStub(healthy_state(cli.version())) as splunk,
        refusing_url() as url,
    ):
        connection = Connection(splunk.url, username=USERNAME, password=PASSWORD)
        hec = Hec(url, HEC_TOKEN, send_probe=True)
        report = verify(Splunk(connection), expected_version=cli.version(), since="24h", hec=hec)
    row = _row(report, "HEC", "health")
    assert (row.status, row.detail) == (Status.FAIL, f"{url} is unreachable or unhealthy")
    assert report.failed()


def test_hec_acknowledgement_off_fails_the_probe() -> None:
    with (
        SplunkRestStub(healthy_state(cli.version())) as splunk,
        HecStub(HEC_TOKEN, use_ack=False) as hec,
    ):
        deployment = Deployment(splunk, hec)
        without_probe = deployment.report()
        with_probe = deployment.report(send_probe=True)
        probes = [
            event for event in hec.events if event["sourcetype"] == "iot-defender-splunk:verify"
        ]
    assert _row(without_probe, "HEC", "acknowledgement").status == Status.SKIP
    ack = _row(with_probe, "HEC", "acknowledgement")
    assert ack.status == Status.FAIL
    assert "indexer acknowledgement is off" in ack.detail
    assert len(probes) == 1  # only --send-probe writes, and only one event


def test_without_send_probe_nothing_is_sent_to_hec(deployment: Deployment) -> None:
    deployment.report()
    assert deployment.hec.events == []
    assert [request.path for request in deployment.hec.requests] == ["/services/collector/health"]


def test_a_saved_search_that_does_not_parse_fails_by_name(deployment: Deployment) -> None:
    deployment.state.parse_errors["`iot_defender_violations`"] = (
        "Error in 'SearchParser': The search specifies a macro 'iot_defender_violations' that "
        "cannot be found."
    )
    report = deployment.report()
    failed = {
        f.subject: f.detail
        for f in report.findings
        if f.area == "Searches" and f.status == Status.FAIL
    }
    broken = {
        s.name
        for s in deployment.state.saved_searches
        if not s.disabled and "`iot_defender_violations`" in s.search
    }
    assert broken
    assert set(failed) == broken | {f"{len(deployment.state.saved_searches)} saved searches"}
    assert all(
        detail.startswith("does not parse: Error in 'SearchParser'")
        for name, detail in failed.items()
        if name in broken
    )


def test_a_saved_search_that_fails_to_run_fails_by_name(deployment: Deployment) -> None:
    deployment.state.run_errors["iot_defender_risky_ports"] = (
        "Error in 'lookup' command: Could not construct lookup 'iot_defender_risky_ports'."
    )
    report = deployment.report()
    row = _row(report, "Searches", "IoT - Risky Port Listening")
    assert row.status == Status.FAIL
    assert row.detail.startswith("fails to run: Error in 'lookup' command")


def test_an_error_message_in_a_finished_job_fails_the_search(deployment: Deployment) -> None:
    deployment.state.run_messages["iot_defender_risky_ports"] = (
        "The lookup table 'x' does not exist."
    )
    row = _row(deployment.report(), "Searches", "IoT - Risky Port Listening")
    assert (row.status, row.detail) == (
        Status.FAIL,
        "fails to run: The lookup table 'x' does not exist.",
    )


def test_a_steady_sourcetype_without_events_warns(deployment: Deployment) -> None:
    deployment.state.events = [e for e in deployment.state.events if e.sourcetype != "aws:iot:log"]
    report = deployment.report()
    log = _row(report, "Data", "aws:iot:log")
    assert (log.status, log.detail) == (
        Status.WARN,
        "no events in the last 24h: is its source on?",
    )
    assert _row(report, "Data", "aws:iot:response").status == Status.OK
    assert not report.failed()
    assert report.failed(strict=True)


def test_unparsed_events_warn(deployment: Deployment) -> None:
    now = time.time()
    deployment.state.events += [StubEvent("iot_security", "aws:iot:defender:unparsed", now)] * 3
    row = _row(deployment.report(), "Data", "aws:iot:defender:unparsed")
    assert (row.status, row.detail) == (
        Status.WARN,
        "3 events in the last 24h the transform could not read",
    )


def test_a_token_signs_in_without_a_password(deployment: Deployment) -> None:
    deployment.state.bearer_token = BEARER
    connection = Connection(deployment.splunk.url, token=BEARER)
    report = verify(
        Splunk(connection), expected_version=cli.version(), since="24h", hec=Hec(None, None)
    )
    assert _row(report, "App", "iot_defender_security").status == Status.OK
    assert _row(report, "HEC", "health").status == Status.SKIP
    assert not any(r.path == "/services/auth/login" for r in deployment.splunk.requests)


# --- the command -------------------------------------------------------------------------------


def test_the_command_prints_the_table_and_exits_0_when_healthy(environment, capsys) -> None:
    assert cli.main(["verify", "--send-probe"]) == 0
    out = capsys.readouterr().out
    assert f"iot-defender-splunk verify: {environment.splunk.url}" in out
    assert "Detections fired in the last 24h" in out
    assert "FAIL" not in out


def test_the_command_exits_1_on_a_failure(environment, capsys) -> None:
    environment.state.app = None
    assert cli.main(["verify"]) == 1
    assert "not installed" in capsys.readouterr().out


def test_strict_fails_on_warnings(environment) -> None:
    environment.state.events = [
        e for e in environment.state.events if e.sourcetype != "aws:iot:log"
    ]
    assert cli.main(["verify"]) == 0
    assert cli.main(["verify", "--strict"]) == 1


def test_wrong_credentials_are_one_line(environment, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SPLUNK_PASSWORD", "wrong")
    assert cli.main(["verify"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "iot-defender-splunk verify: error: Splunk refused the credentials (HTTP 401)"
    ]


def test_an_unreachable_splunk_is_one_line(environment, capsys) -> None:
    with refusing_url() as url:
        assert cli.main(["verify", "--splunk-url", url]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"iot-defender-splunk verify: error: cannot reach Splunk at {url} (")


@pytest.mark.parametrize(
    ("argv", "unset", "message"),
    [
        ([], "SPLUNK_URL", "no Splunk URL: pass --splunk-url or set SPLUNK_URL"),
        ([], "SPLUNK_PASSWORD", "no credentials: set SPLUNK_TOKEN, or SPLUNK_USERNAME and"),
        (["--since", "yesterday"], None, "--since must be a count and a unit"),
        (["--since", "0h"], None, "--since must be a count and a unit"),
        (["--timeout", "0"], None, "--timeout must be a positive number of seconds"),
        (["--splunk-url", "ftp://splunk"], None, "Splunk URL must be http(s)://host[:port]"),
        (["--timeout", "inf"], None, "--timeout must be a positive number of seconds, at most"),
        (["--timeout", "nan"], None, "--timeout must be a positive number of seconds, at most"),
        (
            ["--splunk-url", "https://splunk:99999"],
            None,
            "Splunk URL must be http(s)://host[:port], not 'https://splunk:99999'",
        ),
    ],
)
@pytest.mark.usefixtures("environment")
def test_bad_settings_are_one_line_and_exit_1(
    monkeypatch, capsys, argv: list[str], unset: str | None, message: str
) -> None:
    if unset:
        monkeypatch.delenv(unset)
    assert cli.main(["verify", *argv]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"iot-defender-splunk verify: error: {message}")


def test_help_says_what_is_checked_and_what_is_written(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["verify", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--send-probe" in out
    assert "Nothing else is written." in out
