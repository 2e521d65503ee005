"""Post HEC events from an NDJSON file (or stdin) to a Splunk HTTP Event Collector.

Each line is one HEC event envelope, a JSON object with an "event" key, as the transform
writes them (`iot-defender-splunk demo` leaves such a file in build/demo/). Every line is
checked before anything is sent: a bad line stops the whole send unless --skip-invalid says to
leave it out. Events go in gzip batches with a channel; with indexer acknowledgement on the
token (Firehose tokens have it), the command waits until Splunk confirms every batch.

Delivery is at least once. A batch is sent again when HEC is busy (503) or the connection
fails; if the connection failed after the batch went out, Splunk may hold it twice, and the
summary says how many events that can be. With acks, a batch counts as delivered only once
Splunk confirms it; one still unconfirmed at --ack-timeout is reported, and the exit status is
then 1 (it may or may not be indexed). 400, 401 and 403 are never retried: HEC's text is shown.

The token is read from SPLUNK_HEC_TOKEN (and the URL from SPLUNK_HEC_URL) when the options are
not given, so it need not appear on the command line or in shell history. TLS certificates are
verified (REQUESTS_CA_BUNDLE names a private CA); --insecure turns that off, with a warning.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from iot_defender_splunk import cli
from iot_defender_splunk.console import progress, warn
from iot_defender_splunk.hec import HecClient, HecError, SendReport

NAME = "send"
SUMMARY = "post HEC events (NDJSON, one envelope a line) to Splunk HEC, with acks and retries"

DEFAULT_BATCH_BYTES = 800_000
# Splunk Enterprise's default [http_input] max_content_length: a bigger POST gets 413.
MAX_BATCH_BYTES = 838_860_800
# A day: longer than any wait worth making, and inside what a thread's timer accepts.
MAX_SECONDS = 86_400
# Lines named in an error: enough to find the pattern, short enough to stay one line.
_SHOWN_LINES = 10


def add_hec_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of every subcommand that posts to HEC."""
    hec = parser.add_argument_group("Splunk HEC")
    hec.add_argument(
        "--hec-url", help="HEC base URL, e.g. https://splunk:8088 (default: $SPLUNK_HEC_URL)"
    )
    hec.add_argument(
        "--hec-token",
        help="HEC token (default: $SPLUNK_HEC_TOKEN; prefer the variable, which stays out of "
        "shell history and process listings)",
    )
    hec.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify the HEC's TLS certificate (a lab Splunk's self-signed one)",
    )
    hec.add_argument("--no-gzip", action="store_true", help="send batches uncompressed")
    hec.add_argument(
        "--batch-bytes",
        type=_positive_int,
        default=DEFAULT_BATCH_BYTES,
        help="most bytes of events in one POST, before compression (default: %(default)s); "
        "an event is never split",
    )
    hec.add_argument(
        "--timeout",
        type=_positive_float,
        default=30.0,
        help="seconds one POST may take, retries included (default: %(default)s)",
    )
    hec.add_argument(
        "--ack-timeout",
        type=_positive_float,
        default=120.0,
        help="seconds to wait for Splunk to confirm indexing (default: %(default)s)",
    )


def hec_client(args: argparse.Namespace, command: str) -> HecClient:
    """The client the HEC options describe; a missing or unusable one is a CommandError."""
    url = args.hec_url or os.environ.get("SPLUNK_HEC_URL")
    token = args.hec_token or os.environ.get("SPLUNK_HEC_TOKEN")
    if not url:
        raise cli.CommandError("no HEC URL: give --hec-url or set SPLUNK_HEC_URL")
    if not token:
        raise cli.CommandError("no HEC token: set SPLUNK_HEC_TOKEN (or give --hec-token)")
    if args.insecure:
        warn(
            command,
            "TLS certificate verification is off (--insecure): anyone on the path "
            "can read the token and the events",
        )
    try:
        return HecClient(
            url,
            token,
            timeout=min(10.0, args.timeout),
            deadline=args.timeout,
            ack_timeout=args.ack_timeout,
            max_batch_bytes=args.batch_bytes,
            verify_tls=not args.insecure,
            use_gzip=not args.no_gzip,
        )
    except ValueError as error:
        raise cli.CommandError(str(error)) from None


def post(client: HecClient, events: Sequence[bytes], what: str) -> SendReport:
    """Send with a progress bar; prints the summary, and raises CommandError on failure."""
    with progress(f"sending {what}", total=len(events)) as advance:
        try:
            report = client.send(events, progress=advance)
        except HecError as error:
            if error.report is not None:
                print(summary(error.report, client))
            raise cli.CommandError(str(error)) from None
    print(summary(report, client))
    return report


def summary(report: SendReport, client: HecClient) -> str:
    """What reached Splunk, in a few lines a person or a script can read."""
    lines = [f"sent {report.events_sent} events in {report.batches} batches to {client.event_url}"]
    if report.acked:
        lines.append("acknowledged: Splunk confirmed every batch is indexed")
    elif report.unconfirmed_batches:
        lines.append(f"unconfirmed: {report.unconfirmed_batches} batches not acknowledged in time")
    elif report.batches:
        lines.append("accepted by HEC (the token has no indexer acknowledgement)")
    if report.possible_duplicates:
        lines.append(
            f"possible duplicates: up to {report.possible_duplicates} events, from "
            f"{report.resent_batches} batches sent again after a connection failed mid-request"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class _Invalid:
    line: int
    reason: str


def read_events(stream: BinaryIO, max_bytes: int) -> tuple[list[bytes], list[_Invalid]]:
    """The input's events and its unusable lines; blank lines are neither."""
    events: list[bytes] = []
    invalid: list[_Invalid] = []
    for number, raw in enumerate(stream, start=1):
        line = raw.strip()
        if not line:
            continue
        reason = _problem(line, max_bytes)
        if reason is None:
            events.append(line)
        else:
            invalid.append(_Invalid(number, reason))
    return events, invalid


def _problem(line: bytes, max_bytes: int) -> str | None:
    """Why HEC would refuse this line as an event envelope, or None."""
    if len(line) > max_bytes:
        return f"{len(line)} bytes, over --batch-bytes"
    try:
        envelope = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return "not JSON"
    if not isinstance(envelope, dict):
        return f"JSON {type(envelope).__name__}, not an object"
    if "event" not in envelope:
        return 'no "event" key'
    if envelope["event"] in ("", None):
        return '"event" is blank'
    return None


def describe(invalid: list[_Invalid]) -> str:
    shown = ", ".join(f"{bad.line} ({bad.reason})" for bad in invalid[:_SHOWN_LINES])
    more = f" and {len(invalid) - _SHOWN_LINES} more" if len(invalid) > _SHOWN_LINES else ""
    return f"{len(invalid)} invalid lines: {shown}{more}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        nargs="?",
        default="-",
        metavar="FILE",
        help="NDJSON file of HEC event envelopes; '-' or nothing reads stdin",
    )
    parser.add_argument(
        "--skip-invalid",
        action="store_true",
        help="leave out lines that are not event envelopes (listed on stderr) instead of "
        "sending nothing",
    )
    add_hec_arguments(parser)


def run(args: argparse.Namespace) -> int:
    client = hec_client(args, NAME)
    with _open(args.file) as stream:
        events, invalid = read_events(stream, args.batch_bytes)
    if invalid and not args.skip_invalid:
        raise cli.CommandError(
            f"{describe(invalid)}; nothing sent (--skip-invalid leaves them out)"
        )
    if invalid:
        warn(NAME, f"left out {describe(invalid)}")
    if not events:
        raise cli.CommandError("no events to send")
    with client:
        post(client, events, "events")
    return 0


def _open(name: str) -> AbstractContextManager[BinaryIO]:
    if name == "-":
        return contextlib.nullcontext(sys.stdin.buffer)  # stdin stays open
    try:
        return Path(name).open("rb")
    except OSError as error:
        raise cli.CommandError(f"cannot read {name}: {error.strerror}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of bytes") from None
    if not 1 <= value <= MAX_BATCH_BYTES:
        raise argparse.ArgumentTypeError(
            f"must be positive and at most {MAX_BATCH_BYTES} (HEC's max_content_length), "
            f"not {value}"
        )
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be positive and at most {MAX_SECONDS}, not {text}")
    return value
