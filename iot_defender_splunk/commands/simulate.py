"""Simulate a fleet and put what AWS would send through the real transform Lambda.

The fleet (``--devices`` things of several types, seeded by ``--seed``) lives ``--hours``
hours up to ``--end`` (now, UTC, unless given), with scripted incidents: a camera opening
tcp/21 then tcp/23, a gateway exfiltrating to a new address, an authentication storm from
one address, a cloned certificate, and an audit finding a shared certificate and logging
disabled. Its messages are buffered as Firehose buffers them, transformed by the real
handler, and the HEC events it returns (one JSON object per line) are written to ``--out``
or sent to a Splunk HEC (``--hec-url``, ``--hec-token``), batch by batch as they are made:
memory holds a few batches and the fleet, however many hours are simulated.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from iot_defender_splunk import cli
from iot_defender_splunk.hec import HecClient, HecError
from iot_defender_splunk.simulator import FleetStream, Invocation, stream_fleet, stream_transform
from iot_defender_splunk.simulator.runner import DEFAULT_INDEX
from iot_defender_splunk.simulator.stamps import HOUR
from shared.settings import ConfigError
from transform.config import load_settings
from transform.timestamps import EARLIEST_PLAUSIBLE

NAME = "simulate"
SUMMARY = "simulate a fleet with incidents; write or send the HEC events the transform makes"
MAX_DEVICES = 100_000
MAX_HOURS = 31 * 24
# The transform re-stamps events further ahead than a day (MAX_FUTURE_SKEW_SECONDS' default).
MAX_FUTURE_SECONDS = 86_400


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_DEVICES:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_DEVICES:,}, not {value}")
    return value


def hours_argument(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of hours") from None
    if not 0 < value <= MAX_HOURS:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {MAX_HOURS}")
    return value


def end_argument(text: str) -> float:
    """An ISO-8601 moment (UTC unless it says otherwise) as epoch seconds."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 time such as 2026-11-23T02:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devices", type=positive_int, default=20, help="things (default 20)")
    parser.add_argument(
        "--hours", type=hours_argument, default=6.0, help="hours simulated (default 6)"
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="the same seed gives the same fleet (default 1)"
    )
    parser.add_argument(
        "--end", type=end_argument, help="ISO-8601 end of the simulation (default now)"
    )
    parser.add_argument(
        "--no-detect",
        dest="detect",
        action="store_false",
        help="metrics as device metric reports, not Detect's exports (accounts without Detect)",
    )
    parser.add_argument("--out", help="NDJSON file of HEC events; '-' for standard output")
    parser.add_argument(
        "--hec-url", help="send the events to this Splunk HEC instead, e.g. https://splunk:8088"
    )
    parser.add_argument(
        "--hec-token",
        default=os.environ.get("SPLUNK_HEC_TOKEN"),
        help="HEC token for --hec-url (default: $SPLUNK_HEC_TOKEN, which stays out of shell "
        "history)",
    )
    parser.add_argument(
        "--index", default=DEFAULT_INDEX, help=f"the events' index (default {DEFAULT_INDEX})"
    )
    parser.add_argument(
        "--insecure", action="store_true", help="do not verify the HEC's TLS certificate (labs)"
    )


def _hec_client(args: argparse.Namespace) -> HecClient | None:
    """The HEC to send to, checked before any work is done; None when writing a file."""
    if (args.out is None) == (args.hec_url is None):
        raise cli.CommandError("give either --out FILE or --hec-url URL")
    if args.hec_url is None:
        return None
    if not args.hec_token:
        raise cli.CommandError("--hec-url needs --hec-token (or SPLUNK_HEC_TOKEN)")
    try:
        return HecClient(args.hec_url, args.hec_token, verify_tls=not args.insecure)
    except ValueError as error:
        raise cli.CommandError(str(error)) from None


def _check(args: argparse.Namespace, now: float) -> float:
    """The simulation's end; every mistake in the arguments as one line."""
    try:
        load_settings({"SPLUNK_INDEX": args.index})
    except ConfigError as error:
        raise cli.CommandError(str(error).replace("SPLUNK_INDEX", "--index")) from None
    if args.out is not None and Path(args.out).is_dir():
        raise cli.CommandError(f"--out {args.out} is a directory; name a file in it")
    return simulation_end(args.end, args.hours, now)


def simulation_end(end: float | None, hours: float, now: float) -> float:
    """``end`` (``now`` when None), if the transform would keep the simulation's times."""
    end = now if end is None else end
    if end > now + MAX_FUTURE_SECONDS:
        raise cli.CommandError("--end is more than a day ahead: the transform would re-stamp it")
    if end - hours * 3600 < EARLIEST_PLAUSIBLE:
        raise cli.CommandError("--end and --hours reach before 2015, which the transform refuses")
    return end


@dataclass
class _Tally:
    """The summary's figures, counted as the events stream past (none of them is kept)."""

    records: int = 0
    invocations: int = 0
    results: Counter[str] = field(default_factory=Counter)
    sourcetypes: Counter[str] = field(default_factory=Counter)

    @property
    def events(self) -> int:
        return self.sourcetypes.total()

    def counted(
        self, invocations: Iterable[Invocation], advance: Callable[[Invocation], None]
    ) -> Iterator[list[bytes]]:
        """Each invocation's events, in order, counted on their way through."""
        for invocation in invocations:
            self.records += invocation.outcome.records
            self.invocations += 1
            self.results.update(invocation.outcome.results)
            self.sourcetypes.update(
                orjson.loads(event)["sourcetype"] for event in invocation.events
            )
            yield invocation.events
            advance(invocation)


@contextmanager
def _progress(fleet: FleetStream) -> Iterator[Callable[[Invocation], None]]:
    """A progress bar on stderr over the simulated hours (nothing when stderr is not a
    terminal): how many records there will be is only known at the end."""
    console = Console(stderr=True)
    hours = TextColumn("{task.completed:.1f}/{task.total:g} h")
    columns = (TextColumn("transform"), BarColumn(), hours, TimeElapsedColumn())
    with Progress(
        *columns, console=console, transient=True, disable=not console.is_terminal
    ) as progress:
        task = progress.add_task("hours", total=fleet.hours)

        def advance(invocation: Invocation) -> None:
            reached = invocation.batch.records[-1].arrival - fleet.start
            progress.update(task, completed=min(reached / HOUR, fleet.hours))

        yield advance


def _write(per_invocation: Iterable[list[bytes]], out: str) -> None:
    """The events to standard output as they come, or to a file that appears whole once the
    run is done (an interrupted run leaves no half-written file, nor harms an older one)."""
    if out == "-":
        _write_lines(per_invocation, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    path = Path(out)
    partial = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with partial.open("wb") as sink:
                _write_lines(per_invocation, sink)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(path)
    except OSError as error:
        raise cli.CommandError(f"cannot write {out}: {error.strerror}") from None


def _write_lines(per_invocation: Iterable[list[bytes]], sink: IO[bytes]) -> None:
    for events in per_invocation:
        sink.write(b"".join(event + b"\n" for event in events))


def _send(per_invocation: Iterable[list[bytes]], client: HecClient) -> str:
    try:
        report = client.send(itertools.chain.from_iterable(per_invocation))
    except HecError as error:
        raise cli.CommandError(f"Splunk HEC refused the events: {error}") from None
    acked = "acknowledged by the indexers" if report.acked else "accepted (ack not enabled)"
    return f"sent {report.events_sent} events in {report.batches} batches to HEC, {acked}"


def _summary(fleet: FleetStream, tally: _Tally, seconds: float) -> str:
    results = tally.results
    source = "Detect exports" if fleet.detect else "device reports"
    lines = [
        f"{len(fleet.fleet.devices)} devices, {fleet.hours:g} h to "
        f"{dt.datetime.fromtimestamp(fleet.end, dt.UTC):%Y-%m-%dT%H:%M:%SZ} ({source}): "
        f"{tally.records} records in {tally.invocations} invocations, "
        f"{results['Ok']} Ok, {results['Dropped']} Dropped, "
        f"{results['ProcessingFailed']} failed; {tally.events} HEC events in {seconds:.1f} s",
    ]
    for incident in fleet.incidents:
        where = ", ".join(incident.device_names) or "the account"
        expected = ", ".join(fleet.expected_detections(incident)) or "none yet"
        lines.append(f"  {incident.id} on {where}: {incident.title}; detections: {expected}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    client = _hec_client(args)
    end = _check(args, time.time())
    fleet = stream_fleet(
        devices=args.devices, hours=args.hours, seed=args.seed, end=end, detect=args.detect
    )
    tally = _Tally()
    invocations = stream_transform(fleet.batches(), index=args.index)
    with _progress(fleet) as advance, closing(invocations):
        per_invocation = tally.counted(invocations, advance)
        if client is None:
            _write(per_invocation, args.out)
            outcome = f"wrote {tally.events} events to {args.out}"
        else:
            outcome = _send(per_invocation, client)
    sys.stderr.write(_summary(fleet, tally, time.monotonic() - started) + "\n")
    sys.stderr.write(outcome + "\n")
    failed = tally.results["ProcessingFailed"]
    if failed:
        raise cli.CommandError(f"{failed} records failed in the transform; see the summary")
    sys.stderr.write(", ".join(f"{n} {s}" for s, n in sorted(tally.sourcetypes.items())) + "\n")
    return 0
