"""iot_defender_splunk.deployment's pure parts: index terms of a macro, writing searches, SPL
string quoting, sourcetype verdicts and the report's exit decision."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iot_defender_splunk import deployment
from iot_defender_splunk.deployment import Finding, Report, Status
from transform.sourcetypes import ALL_SOURCETYPES, UNPARSED


@pytest.mark.parametrize(
    ("definition", "names"),
    [
        ("index=iot_security", ["iot_security"]),
        ("(index=iot_sec OR index=iot_ops)", ["iot_sec", "iot_ops"]),
        ('index="iot-prod" sourcetype="aws:iot:*"', ["iot-prod"]),
        ("INDEX = iot_*", ["iot_*"]),
        ("sourcetype=aws:iot:*", []),
        ("not_an_index=iot_security", []),
    ],
)
def test_index_names_are_read_from_every_index_term(definition: str, names: list[str]) -> None:
    assert deployment.index_names(definition) == names


@pytest.mark.parametrize(
    ("search", "parsed", "writes"),
    [
        ("`iot_defender_metrics` | stats count by thing", {"commands": []}, None),
        ("x | outputlookup iot_defender_port_baseline", {}, "outputlookup"),
        ("x | stats count", {"commands": [{"command": "collect"}]}, "collect"),
        ("`baseline_macro`", {"normalizedSearch": "search x | outputlookup a"}, "outputlookup"),
        ("x | lookup iot_defender_risky_ports port OUTPUT risk", {}, None),
        ("x | eval outputlookup_name=1", {}, None),
    ],
)
def test_searches_that_write_are_recognised_in_text_or_parse(
    search: str, parsed: dict[str, object], writes: str | None
) -> None:
    assert deployment.writing_command(search, parsed) == writes


def _spl_unquote(literal: str) -> str:
    """How SPL reads a double-quoted string: backslash escapes the next character."""
    assert literal.startswith('"')
    assert literal.endswith('"')
    body, out, escaped = literal[1:-1], [], False
    for char in body:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            assert char != '"', "an unescaped quote would end the string early"
            out.append(char)
    assert not escaped
    return "".join(out)


@pytest.mark.property
@given(st.text())
def test_an_spl_string_holds_exactly_its_value(value: str) -> None:
    assert _spl_unquote(deployment.spl_string(value)) == value


def test_the_fired_alerts_search_names_only_the_app() -> None:
    query: dict[str, str] = {}

    class Recorder:
        def search(self, text: str, **window: str) -> list[dict[str, str]]:
            query.update(text=text, **window)
            return [{"ss_name": "IoT - X", "fired": "2", "last": "1795300000.000"}]

    (firing,) = deployment.fired_detections(Recorder(), "7d")  # type: ignore[arg-type]
    assert 'ss_app="iot_defender_security"' in query["text"]
    assert re.search(r"\bindex=_audit action=alert_fired\b", query["text"])
    assert (query["earliest_time"], query["latest_time"]) == ("-7d", "now")
    assert firing == deployment.Firing("IoT - X", 2, "2026-11-21T22:26:40+00:00")


def test_every_sourcetype_gets_a_row_and_only_steady_ones_warn_when_empty() -> None:
    findings = deployment.check_sourcetypes({}, "24h")
    assert [f.subject for f in findings] == sorted(ALL_SOURCETYPES)
    warned = {f.subject for f in findings if f.status == Status.WARN}
    assert warned == set(deployment.STEADY_SOURCETYPES)
    assert UNPARSED not in deployment.STEADY_SOURCETYPES


def test_sourcetypes_with_events_are_ok_and_counted() -> None:
    counts = dict.fromkeys(ALL_SOURCETYPES - {UNPARSED}, 1234)
    findings = deployment.check_sourcetypes(counts, "7d")
    assert {f.status for f in findings} == {Status.OK}
    metric = next(f for f in findings if f.subject == "aws:iot:defender:metric")
    assert metric.detail == "1,234 events in the last 7d"


@pytest.mark.parametrize(
    ("statuses", "failed", "strict"),
    [
        ([Status.OK, Status.SKIP], False, False),
        ([Status.OK, Status.WARN], False, True),
        ([Status.FAIL], True, True),
        ([Status.SKIP, Status.SKIP], False, False),
    ],
)
def test_only_failures_fail_unless_strict(statuses: list[Status], failed: bool, strict: bool):
    report = Report([Finding("A", str(n), status, "") for n, status in enumerate(statuses)])
    assert report.failed() is failed
    assert report.failed(strict=True) is strict


@pytest.mark.parametrize(
    ("search", "job"),
    [
        ("`iot_defender_metrics` | stats count", "search `iot_defender_metrics` | stats count"),
        ("  | tstats count where index=x\n", "| tstats count where index=x"),
        ("| inputlookup iot_defender_inventory", "| inputlookup iot_defender_inventory"),
    ],
)
def test_a_saved_search_runs_as_its_job_would(search: str, job: str) -> None:
    assert deployment._job_query(search) == job


@pytest.mark.parametrize("since", ["24h", "7d", "90m", "1w", "3600s"])
def test_windows_splunk_reads_as_relative_times_are_accepted(since: str) -> None:
    assert deployment.SINCE.fullmatch(since)


@pytest.mark.parametrize("since", ["0h", "24", "-24h", "24h|delete", "1y", "24 h", ""])
def test_other_windows_are_refused(since: str) -> None:
    assert not deployment.SINCE.fullmatch(since)
