"""Check a live deployment from Splunk's side, with splunk-sdk: the app is installed, enabled
and this version; the `iot_defender_index` macro names indexes that exist and receive events;
HEC is healthy; every sourcetype's events in the window; every saved search of the app parses
and dry-runs on an empty time range (searches that write lookups are parsed only); which
detections fired.

Splunk's management URL and credentials come from --splunk-url (or SPLUNK_URL), SPLUNK_TOKEN or
SPLUNK_USERNAME and SPLUNK_PASSWORD; HEC from SPLUNK_HEC_URL and SPLUNK_HEC_TOKEN. Secrets are
read from the environment only, never from the command line. HEC is checked with its health
endpoint; --send-probe also sends one event (sourcetype iot-defender-splunk:verify) to see
indexer acknowledgement confirm it, which Firehose needs. Nothing else is written.

Exit status 1 when a check FAILs (or WARNs, with --strict), 0 otherwise.
"""

from __future__ import annotations

import argparse
import os

from rich.console import Console
from rich.table import Table

from iot_defender_splunk import cli, deployment
from iot_defender_splunk.deployment import Connection, Hec, Report, Splunk, SplunkError, Status

NAME = "verify"
SUMMARY = "check a live Splunk: app, index, HEC, data per sourcetype, saved searches, detections"
_STYLES = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "bold red", Status.SKIP: "dim"}
_FALSE = {"0", "false", "no"}
# A day: longer than any check needs, and inside what a socket timeout accepts.
MAX_TIMEOUT = 86_400


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--splunk-url",
        default=os.environ.get("SPLUNK_URL"),
        help="Splunk management URL, e.g. https://splunk:8089 (default: SPLUNK_URL)",
    )
    parser.add_argument(
        "--hec-url",
        default=os.environ.get("SPLUNK_HEC_URL"),
        help="Splunk HEC URL (default: SPLUNK_HEC_URL)",
    )
    parser.add_argument(
        "--expect-version",
        default=cli.version(),
        help="app version that must be installed (default: this toolkit's, %(default)s)",
    )
    parser.add_argument(
        "--since",
        default="24h",
        help="window for event counts and fired detections, e.g. 24h, 7d (default %(default)s)",
    )
    parser.add_argument(
        "--send-probe",
        action="store_true",
        help="send one test event to HEC to check indexer acknowledgement",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify TLS certificates (a lab Splunk's self-signed default)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds each connect and read may take, searches included (default %(default)g)",
    )


def _verify_tls(args: argparse.Namespace, variable: str) -> bool:
    return not args.insecure and os.environ.get(variable, "true").lower() not in _FALSE


def connection_of(args: argparse.Namespace) -> Connection:
    """Where and how to sign in; a missing piece is the user's to fix, in one line."""
    if not args.splunk_url:
        raise cli.CommandError("no Splunk URL: pass --splunk-url or set SPLUNK_URL")
    token = os.environ.get("SPLUNK_TOKEN") or None
    username = os.environ.get("SPLUNK_USERNAME") or None
    password = os.environ.get("SPLUNK_PASSWORD") or None
    if not token and not (username and password):
        raise cli.CommandError(
            "no credentials: set SPLUNK_TOKEN, or SPLUNK_USERNAME and SPLUNK_PASSWORD"
        )
    if not deployment.SINCE.fullmatch(args.since):
        raise cli.CommandError(
            f"--since must be a count and a unit (s, m, h, d, w), not {args.since!r}"
        )
    if not 0 < args.timeout <= MAX_TIMEOUT:
        raise cli.CommandError(
            f"--timeout must be a positive number of seconds, at most {MAX_TIMEOUT}"
        )
    return Connection(
        url=args.splunk_url,
        username=username,
        password=password,
        token=token,
        verify_tls=_verify_tls(args, "SPLUNK_VERIFY_TLS"),
        timeout=args.timeout,
    )


def hec_of(args: argparse.Namespace) -> Hec:
    return Hec(
        url=args.hec_url,
        token=os.environ.get("SPLUNK_HEC_TOKEN") or None,
        verify_tls=_verify_tls(args, "SPLUNK_HEC_VERIFY_TLS"),
        send_probe=args.send_probe,
    )


def findings_table(report: Report, url: str) -> Table:
    table = Table(title=f"iot-defender-splunk verify: {url}")
    for column in ("area", "check", "status", "detail"):
        table.add_column(column)
    for finding in report.findings:
        status = f"[{_STYLES[finding.status]}]{finding.status}[/]"
        table.add_row(finding.area, finding.subject, status, finding.detail)
    return table


def firings_table(report: Report, since: str) -> Table:
    table = Table(title=f"Detections fired in the last {since}")
    table.add_column("detection")
    table.add_column("fired", justify="right")
    table.add_column("last (UTC)")
    for firing in report.firings:
        table.add_row(firing.name, str(firing.count), firing.last)
    return table


def run(args: argparse.Namespace) -> int:
    connection = connection_of(args)
    console = Console()
    with console.status(f"checking {connection.url}"):
        try:
            splunk = Splunk(connection)
        except SplunkError as error:
            raise cli.CommandError(str(error)) from None
        report = deployment.verify(
            splunk, expected_version=args.expect_version, since=args.since, hec=hec_of(args)
        )
    console.print(findings_table(report, connection.url))
    if report.firings:
        console.print(firings_table(report, args.since))
    else:
        console.print(f"No detection fired in the last {args.since}.")
    return 1 if report.failed(strict=args.strict) else 0
