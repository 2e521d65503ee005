"""Checking a live deployment from the Splunk side: the app, its index, HEC, the data arriving,
the saved searches and which detections fired.

Every check is one :class:`Finding` (OK, WARN, FAIL or SKIP with a one-line detail), so the
command can print a table and decide its exit status. Splunk is reached with splunk-sdk; the
only SPL built here names the app's own macro and app id, never a value read from events.

Saved searches are parsed (``search/parser``, macros expanded) and then dry-run as a oneshot
job over an empty time range (the first second of 1970), so a missing lookup, KV store
collection or command fails without scanning data. A search that writes (``outputlookup``,
``collect`` ...) is parsed only: running it, even over nothing, would overwrite what it writes.
Disabled searches (the optional MLTK variants) are counted, not checked.
"""

from __future__ import annotations

import contextlib
import fnmatch
import http.client
import json
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from splunklib import binding, client, results

from iot_defender_splunk.hec import HecClient, HecError
from transform.sourcetypes import (
    ALL_SOURCETYPES,
    AUDIT_CHECK,
    AUDIT_TASK,
    CLOUDWATCH_METRIC,
    IOT_LOG,
    LIFECYCLE,
    METRIC,
    THING,
    UNPARSED,
)

APP_ID: Final = "iot_defender_security"
INDEX_MACRO: Final = "iot_defender_index"
# Sourcetypes a healthy stack sends every day (scheduled or continuous sources); the others
# arrive only when something happens (an alarm, a finding, a response, a bad record).
STEADY_SOURCETYPES: Final = frozenset(
    {METRIC, AUDIT_TASK, AUDIT_CHECK, IOT_LOG, LIFECYCLE, CLOUDWATCH_METRIC, THING}
)
WRITING_COMMANDS: Final = frozenset(
    {
        "collect",
        "delete",
        "mcollect",
        "meventcollect",
        "outputcsv",
        "outputlookup",
        "outputtext",
        "sendalert",
        "sendemail",
        "tscollect",
    }
)
_WRITES = re.compile(r"\|\s*(" + "|".join(sorted(WRITING_COMMANDS)) + r")\b")
_INDEX_TERM = re.compile(r'\bindex\s*=\s*(?:"([^"]+)"|([^\s()"]+))', re.IGNORECASE)
# An empty time range for dry-runs: 1970-01-01T00:00:00 to 00:00:01.
_EMPTY_RANGE: Final = {"earliest_time": "0", "latest_time": "1"}
SINCE: Final = re.compile(r"^[1-9][0-9]{0,5}[smhdw]$")
PROBE_SOURCETYPE: Final = "iot-defender-splunk:verify"


class Status(StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class Finding:
    area: str
    subject: str
    status: Status
    detail: str


@dataclass(frozen=True)
class Firing:
    """A detection that fired in the window: how often, and when last (UTC)."""

    name: str
    count: int
    last: str


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    firings: list[Firing] = field(default_factory=list)

    def failed(self, *, strict: bool = False) -> bool:
        bad = {Status.FAIL, Status.WARN} if strict else {Status.FAIL}
        return any(finding.status in bad for finding in self.findings)


class SplunkError(Exception):
    """Splunk cannot be reached or refuses the credentials: nothing can be checked."""


class SearchError(Exception):
    """splunkd refused or failed a search; the message is splunkd's own."""


@dataclass(frozen=True)
class Connection:
    """Where Splunk's management port is and how to sign in (password or token)."""

    url: str
    username: str | None = None
    password: str | None = None
    token: str | None = None
    verify_tls: bool = True
    timeout: float = 60.0

    def address(self) -> tuple[str, str, int]:
        parts = urlsplit(self.url)
        try:
            port = parts.port  # urlsplit checks the port only when asked for it
        except ValueError:  # not a number, or out of range
            port = -1
        if parts.scheme not in {"http", "https"} or not parts.hostname or port == -1:
            raise SplunkError(f"Splunk URL must be http(s)://host[:port], not {self.url!r}")
        return parts.scheme, parts.hostname, port or 8089


@dataclass(frozen=True)
class SavedSearch:
    name: str
    search: str
    disabled: bool


def _splunkd_message(error: binding.HTTPError) -> str:
    """splunkd's own words from an error answer (JSON for searches, XML elsewhere)."""
    body = error.body.decode("utf-8", "replace") if isinstance(error.body, bytes) else ""
    with contextlib.suppress(ValueError):
        texts = [m.get("text", "") for m in json.loads(body).get("messages", [])]
        if texts:
            return "; ".join(texts)
    return str(error)


class Splunk:
    """The few splunkd calls the checks make, typed, through splunk-sdk."""

    def __init__(self, connection: Connection) -> None:
        scheme, host, port = connection.address()
        common: dict[str, Any] = {
            "scheme": scheme,
            "host": host,
            "port": port,
            "handler": binding.handler(timeout=connection.timeout, verify=connection.verify_tls),
        }
        if connection.token:
            common["splunkToken"] = connection.token
        try:
            self._system = client.connect(
                username=connection.username or "", password=connection.password or "", **common
            )
            if not connection.token:
                common["token"] = self._system.token
            self._app = client.Service(owner="nobody", app=APP_ID, **common)
            self.version = str(self._system.info["version"])
        except binding.AuthenticationError:
            raise SplunkError("Splunk refused the credentials (HTTP 401)") from None
        except binding.HTTPError as error:
            raise SplunkError(f"Splunk answered {_splunkd_message(error)}") from None
        except (OSError, http.client.HTTPException, ssl.SSLError) as error:
            reason = f"{type(error).__name__}: {error}"
            raise SplunkError(f"cannot reach Splunk at {connection.url} ({reason})") from None

    def app(self) -> tuple[str, bool] | None:
        """(version, enabled) of the installed app, or None when it is not installed."""
        try:
            entity = self._system.apps[APP_ID]
        except KeyError:
            return None
        return str(entity.content.get("version", "")), entity.content.get("disabled") != "1"

    def macro(self, name: str) -> str | None:
        try:
            return str(self._app.macros[name].content.get("definition", ""))
        except KeyError:
            return None

    def indexes(self) -> dict[str, bool]:
        """Every event index and whether it is enabled."""
        return {
            index.name: index.content.get("disabled") != "1"
            for index in self._app.indexes.list(count=-1)
        }

    def saved_searches(self) -> list[SavedSearch]:
        """The app's own saved searches (not those other apps share globally)."""
        return [
            SavedSearch(saved.name, saved.content["search"], saved.content.get("disabled") == "1")
            for saved in self._app.saved_searches.list(count=-1)
            if saved.access.get("app") == APP_ID
        ]

    def parse(self, search: str) -> dict[str, Any]:
        try:
            response = self._app.parse(search, output_mode="json")
        except binding.HTTPError as error:
            raise SearchError(_splunkd_message(error)) from None
        parsed: dict[str, Any] = json.loads(response.body.read())
        return parsed

    def search(self, query: str, **window: str) -> list[dict[str, Any]]:
        """A oneshot job in the app's context; ERROR and FATAL messages are failures."""
        try:
            stream = self._app.jobs.oneshot(query, output_mode="json", count=0, **window)
        except binding.HTTPError as error:
            raise SearchError(_splunkd_message(error)) from None
        rows: list[dict[str, Any]] = []
        for item in results.JSONResultsReader(stream):
            if isinstance(item, results.Message):
                if item.type in {"ERROR", "FATAL"}:
                    raise SearchError(item.message)
            else:
                rows.append(item)
        return rows


Result = TypeVar("Result")


def _attempt(call: Callable[[], Result]) -> tuple[Result | None, str]:
    """The call's result, or None and why splunkd (or the network) refused it."""
    try:
        return call(), ""
    except (SearchError, SplunkError) as error:
        return None, str(error)
    except binding.HTTPError as error:
        return None, _splunkd_message(error)
    except (OSError, http.client.HTTPException) as error:
        return None, f"{type(error).__name__}: {error}"


def _guarded(area: str, subject: str, check: Callable[[], list[Finding]]) -> list[Finding]:
    """One check; whatever splunkd refuses becomes its FAIL row instead of ending the run."""
    findings, error = _attempt(check)
    return [Finding(area, subject, Status.FAIL, error)] if findings is None else findings


def check_app(splunk: Splunk, expected_version: str) -> list[Finding]:
    state = splunk.app()
    if state is None:
        return [Finding("App", APP_ID, Status.FAIL, "not installed")]
    version, enabled = state
    if not enabled:
        return [Finding("App", APP_ID, Status.FAIL, f"version {version} installed but disabled")]
    if version != expected_version:
        detail = f"version {version} installed, {expected_version} expected"
        return [Finding("App", APP_ID, Status.FAIL, detail)]
    return [Finding("App", APP_ID, Status.OK, f"version {version}, enabled")]


def index_names(definition: str) -> list[str]:
    """The index names (or wildcards) an ``index=`` search term of the macro names."""
    return [quoted or bare for quoted, bare in _INDEX_TERM.findall(definition)]


def count_events(splunk: Splunk, since: str) -> list[dict[str, Any]]:
    """Events per index and sourcetype in the window, through the app's own index macro."""
    query = f"| tstats count where `{INDEX_MACRO}` by index sourcetype"
    return splunk.search(query, earliest_time=f"-{since}", latest_time="now")


def _totals(rows: list[dict[str, Any]], key: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in rows:
        totals[str(row[key])] = totals.get(str(row[key]), 0) + int(row["count"])
    return totals


def check_index(splunk: Splunk, by_index: dict[str, int] | None, since: str) -> list[Finding]:
    """The macro's indexes exist, are enabled and (when counts are known) receive events."""
    definition = splunk.macro(INDEX_MACRO)
    if definition is None:
        return [Finding("Index", INDEX_MACRO, Status.FAIL, "macro not found in the app")]
    names = index_names(definition)
    if not names:
        return [Finding("Index", INDEX_MACRO, Status.FAIL, f"names no index: {definition}")]
    findings = [Finding("Index", INDEX_MACRO, Status.OK, definition)]
    indexes = splunk.indexes()
    for name in names:
        matched = sorted(index for index in indexes if fnmatch.fnmatchcase(index, name))
        if not matched:
            findings.append(Finding("Index", name, Status.FAIL, "does not exist"))
        for index in matched:
            events = None if by_index is None else by_index.get(index, 0)
            findings.append(_index_finding(index, indexes[index], events, since))
    if by_index is not None and not any(by_index.get(index, 0) for index in indexes):
        findings = [_as_fail(f) for f in findings]
    return findings


def _index_finding(index: str, enabled: bool, events: int | None, since: str) -> Finding:
    if not enabled:
        return Finding("Index", index, Status.FAIL, "disabled")
    if events is None:
        return Finding("Index", index, Status.OK, "exists (events not counted)")
    if events == 0:
        return Finding("Index", index, Status.WARN, f"no events in the last {since}")
    return Finding("Index", index, Status.OK, f"{events:,} events in the last {since}")


def _as_fail(finding: Finding) -> Finding:
    """No index of the macro receives anything: the pipeline delivers nothing at all."""
    if finding.status != Status.WARN:
        return finding
    return Finding(finding.area, finding.subject, Status.FAIL, finding.detail)


def check_sourcetypes(by_sourcetype: dict[str, int], since: str) -> list[Finding]:
    findings = []
    for sourcetype in sorted(ALL_SOURCETYPES):
        events = by_sourcetype.get(sourcetype, 0)
        counted = f"{events:,} events in the last {since}"
        if sourcetype == UNPARSED:
            status = Status.WARN if events else Status.OK
            detail = f"{counted} the transform could not read" if events else "none"
        elif events:
            status, detail = Status.OK, counted
        elif sourcetype in STEADY_SOURCETYPES:
            status, detail = Status.WARN, f"no events in the last {since}: is its source on?"
        else:
            status, detail = Status.OK, "none (sent only when something happens)"
        findings.append(Finding("Data", sourcetype, status, detail))
    return findings


def writing_command(search: str, parsed: dict[str, Any]) -> str | None:
    """The first command of the search that writes (in its text or as splunkd parsed it)."""
    for command in parsed.get("commands", []):
        if command.get("command") in WRITING_COMMANDS:
            return str(command["command"])
    expanded = " ".join(str(parsed.get(key, "")) for key in ("normalizedSearch", "remoteSearch"))
    found = _WRITES.search(f"{search} {expanded}")
    return found.group(1) if found else None


def _job_query(search: str) -> str:
    """A saved search's text as a job takes it: a leading ``search`` unless it starts with |."""
    stripped = search.strip()
    return stripped if stripped.startswith("|") else f"search {stripped}"


def check_saved_searches(splunk: Splunk) -> list[Finding]:
    searches = splunk.saved_searches()
    if not searches:
        return [Finding("Searches", APP_ID, Status.FAIL, "the app has no saved searches")]
    findings: list[Finding] = []
    ran = parse_only = 0
    writers: set[str] = set()
    enabled = [saved for saved in searches if not saved.disabled]
    for saved in enabled:
        try:
            parsed = splunk.parse(_job_query(saved.search))
        except SearchError as error:
            findings.append(
                Finding("Searches", saved.name, Status.FAIL, f"does not parse: {error}")
            )
            continue
        writes = writing_command(saved.search, parsed)
        if writes:
            parse_only += 1
            writers.add(writes)
            continue
        try:
            splunk.search(_job_query(saved.search), **_EMPTY_RANGE)
        except SearchError as error:
            findings.append(Finding("Searches", saved.name, Status.FAIL, f"fails to run: {error}"))
            continue
        ran += 1
    summary = (
        f"{len(enabled)} enabled searches parse-checked; {ran} ran on an empty time range; "
        f"{parse_only} parsed only (they write: {', '.join(sorted(writers)) or 'none'}); "
        f"{len(searches) - len(enabled)} disabled, not checked"
    )
    status = Status.FAIL if findings else Status.OK
    return [Finding("Searches", f"{len(searches)} saved searches", status, summary), *findings]


def spl_string(value: str) -> str:
    """A double-quoted SPL string literal holding ``value`` exactly."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def fired_detections(splunk: Splunk, since: str) -> list[Firing]:
    """Alerts of the app that fired in the window, from the _audit index (alert.track)."""
    query = (
        f"search index=_audit action=alert_fired ss_app={spl_string(APP_ID)} "
        "| stats count AS fired max(_time) AS last by ss_name | sort - fired"
    )
    rows = splunk.search(query, earliest_time=f"-{since}", latest_time="now")
    return [
        Firing(
            str(row["ss_name"]),
            int(row["fired"]),
            datetime.fromtimestamp(float(row["last"]), UTC).isoformat(timespec="seconds"),
        )
        for row in rows
    ]


@dataclass(frozen=True)
class Hec:
    """Splunk HEC as Firehose reaches it; ``send_probe`` allows one test event."""

    url: str | None
    token: str | None
    verify_tls: bool = True
    send_probe: bool = False


def check_hec(hec: Hec) -> list[Finding]:
    if not hec.url or not hec.token:
        skipped = "not configured (set SPLUNK_HEC_URL and SPLUNK_HEC_TOKEN)"
        return [Finding("HEC", "health", Status.SKIP, skipped)]
    try:
        hec_client = HecClient(hec.url, hec.token, verify_tls=hec.verify_tls)
    except ValueError as error:
        return [Finding("HEC", "health", Status.FAIL, str(error))]
    if not hec_client.health():
        return [Finding("HEC", "health", Status.FAIL, f"{hec.url} is unreachable or unhealthy")]
    findings = [Finding("HEC", "health", Status.OK, f"{hec.url} is healthy")]
    findings.append(_acknowledgement(hec_client) if hec.send_probe else _ack_not_checked())
    return findings


def _ack_not_checked() -> Finding:
    detail = "not checked: --send-probe sends one test event to see the ackId confirmed"
    return Finding("HEC", "acknowledgement", Status.SKIP, detail)


def _acknowledgement(hec_client: HecClient) -> Finding:
    """One probe event; Firehose needs the token's indexer acknowledgement on."""
    probe = {
        "time": round(time.time(), 3),
        "source": "iot-defender-splunk verify",
        "sourcetype": PROBE_SOURCETYPE,
        "event": {"message": "iot-defender-splunk verify probe: HEC acknowledgement check"},
    }
    try:
        sent = hec_client.send([json.dumps(probe).encode()])
    except HecError as error:
        return Finding("HEC", "acknowledgement", Status.FAIL, f"probe refused: {error}")
    if not sent.acked:
        detail = (
            "probe accepted without an ackId: indexer acknowledgement is off (Firehose needs it)"
        )
        return Finding("HEC", "acknowledgement", Status.FAIL, detail)
    return Finding("HEC", "acknowledgement", Status.OK, "probe event indexed and acknowledged")


def verify(splunk: Splunk, *, expected_version: str, since: str, hec: Hec) -> Report:
    """Every check, in the order a deployment is built: app, index, HEC, data, searches."""
    report = Report([Finding("Splunk", "server", Status.OK, f"Splunk {splunk.version}")])
    app = _guarded("App", APP_ID, lambda: check_app(splunk, expected_version))
    report.findings += app
    if app[0].status != Status.OK:
        report.findings += check_hec(hec)
        skipped = "not checked: the app, its macros and its searches are needed"
        report.findings.append(Finding("Data", "all", Status.SKIP, skipped))
        return report
    rows, error = _attempt(lambda: count_events(splunk, since))
    by_index = None if rows is None else _totals(rows, "index")
    report.findings += _guarded("Index", INDEX_MACRO, lambda: check_index(splunk, by_index, since))
    report.findings += check_hec(hec)
    if rows is None:
        report.findings.append(Finding("Data", "event counts", Status.FAIL, error))
    else:
        report.findings += check_sourcetypes(_totals(rows, "sourcetype"), since)
    report.findings += _guarded("Searches", "saved searches", lambda: check_saved_searches(splunk))
    firings, error = _attempt(lambda: fired_detections(splunk, since))
    if firings is None:
        detail = f"cannot read fired alerts from _audit: {error}"
        report.findings.append(Finding("Detections", "fired", Status.WARN, detail))
    else:
        report.firings = firings
    return report
