"""Simulate a fleet and put what AWS would send through the real transform Lambda.

The fleet (``--devices`` things of several types, seeded by ``--seed``) lives ``--hours``
hours up to ``--end`` (now, UTC, unless given), with scripted incidents: a camera opening
tcp/21 then tcp/23, a gateway exfiltrating to a new address, an authentication storm from
one address, a cloned certificate, and an audit finding a shared certificate and logging
disabled. Its messages are buffered as Firehose buffers them, transformed by the real
handler, and the HEC events it returns (one JSON object per line) are written to ``--out``
or sent to a Splunk HEC (``--hec-url``, ``--hec-token``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from iot_defender_splunk import cli
from iot_defender_splunk.hec import HecClient, HecError
from iot_defender_splunk.simulator import Simulation, TransformRun, run_transform, simulate_fleet
from iot_defender_splunk.simulator.runner import DEFAULT_INDEX
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
    parser.add_argument("--seed", type=int, default=1, help="the same seed gives the same fleet")
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
    parser.add_argument("--hec-url", help="send the events to this Splunk HEC instead")
    parser.add_argument(
        "--hec-token", default=os.environ.get("SPLUNK_HEC_TOKEN"), help="(or SPLUNK_HEC_TOKEN)"
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
    return simulation_end(args.end, args.hours, now)


def simulation_end(end: float | None, hours: float, now: float) -> float:
    """``end`` (``now`` when None), if the transform would keep the simulation's times."""
    end = now if end is None else end
    if end > now + MAX_FUTURE_SECONDS:
        raise cli.CommandError("--end is more than a day ahead: the transform would re-stamp it")
    if end - hours * 3600 < EARLIEST_PLAUSIBLE:
        raise cli.CommandError("--end and --hours reach before 2015, which the transform refuses")
    return end


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr (nothing when stderr is not a terminal)."""
    console = Console(stderr=True)
    columns = (TextColumn("transform"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("records", total=total)
        yield lambda records: progress.advance(task, records)


def _write(events: list[bytes], out: str) -> None:
    data = b"".join(event + b"\n" for event in events)
    if out == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    path = Path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as error:
        raise cli.CommandError(f"cannot write {out}: {error.strerror}") from None


def _send(events: list[bytes], client: HecClient) -> str:
    try:
        report = client.send(events)
    except HecError as error:
        raise cli.CommandError(f"Splunk HEC refused the events: {error}") from None
    acked = "acknowledged by the indexers" if report.acked else "accepted (ack not enabled)"
    return f"sent {report.events_sent} events in {report.batches} batches to HEC, {acked}"


def _summary(simulation: Simulation, run: TransformRun, seconds: float) -> str:
    results = run.results()
    source = "Detect exports" if simulation.detect else "device reports"
    lines = [
        f"{len(simulation.fleet.devices)} devices, {simulation.hours:g} h to "
        f"{dt.datetime.fromtimestamp(simulation.end, dt.UTC):%Y-%m-%dT%H:%M:%SZ} ({source}): "
        f"{len(simulation.messages)} records in {len(run.outcomes)} invocations, "
        f"{results['Ok']} Ok, {results['Dropped']} Dropped, "
        f"{results['ProcessingFailed']} failed; {len(run.events)} HEC events in {seconds:.1f} s",
    ]
    for incident in simulation.incidents:
        where = ", ".join(incident.device_names) or "the account"
        expected = ", ".join(simulation.expected_detections(incident)) or "none yet"
        lines.append(f"  {incident.id} on {where}: {incident.title}; detections: {expected}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    client = _hec_client(args)
    end = _check(args, time.time())
    simulation = simulate_fleet(
        devices=args.devices, hours=args.hours, seed=args.seed, end=end, detect=args.detect
    )
    with _progress(len(simulation.messages)) as advance:
        result = run_transform(simulation.batches, index=args.index, progress=advance)
    failed = result.results()["ProcessingFailed"]
    if client is None:
        _write(result.events, args.out)
        outcome = f"wrote {len(result.events)} events to {args.out}"
    else:
        outcome = _send(result.events, client)
    sys.stderr.write(_summary(simulation, result, time.monotonic() - started) + "\n")
    sys.stderr.write(outcome + "\n")
    if failed:
        raise cli.CommandError(f"{failed} records failed in the transform; see the summary")
    sourcetypes = Counter(orjson.loads(event)["sourcetype"] for event in result.events)
    sys.stderr.write(", ".join(f"{n} {s}" for s, n in sorted(sourcetypes.items())) + "\n")
    return 0
