"""`make demo`: the real pipeline on the bundled sample messages, no AWS account needed.

Each input kind's sample messages (samples/<kind>/) become one Firehose transformation
event, go through the real Lambda handler, and the resulting HEC events are written to an
NDJSON file. With SPLUNK_HEC_URL and SPLUNK_HEC_TOKEN set they are also sent to that HEC
(with a channel, as Firehose tokens have indexer acknowledgement on).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from aws_lambda_powertools import Logger

from iot_defender_splunk.hec import HecClient, HecError
from iot_defender_splunk.local_lambda import LocalLambdaContext
from iot_defender_splunk.simulator.delivery import firehose_event

NAME = "demo"
SUMMARY = "run the real pipeline locally on simulated AWS messages and summarise it"
DEFAULT_OUT = Path("build") / "demo" / "hec-events.ndjson"


@dataclass
class KindSummary:
    kind: str
    records: int = 0
    results: Counter[str] = field(default_factory=Counter)
    events: int = 0


def run_pipeline(log_path: Path) -> tuple[list[bytes], list[KindSummary]]:
    """Every sample kind through the handler; Lambda's own stdout (logs, EMF) goes to a file."""
    from devtools.samples import (  # noqa: PLC0415 - repository samples, until the simulator feeds the demo
        record_bytes,
        sample_paths,
    )

    # The Lambda code, imported on use: the CLI's other commands start without it.
    from transform.config import load_settings  # noqa: PLC0415
    from transform.handler import Runtime, logger, make_handler  # noqa: PLC0415

    events: list[bytes] = []
    summaries: list[KindSummary] = []
    by_kind: dict[str, list[Path]] = {}
    for path in sample_paths():
        by_kind.setdefault(path.parent.name, []).append(path)
    lambda_handler = make_handler(Runtime(load_settings(os.environ)))  # SPLUNK_INDEX honoured
    with log_path.open("w", encoding="utf-8") as log, _lambda_output_to(logger, log):
        for kind, paths in sorted(by_kind.items()):
            event = firehose_event([record_bytes(path) for path in paths])
            response = lambda_handler(event, LocalLambdaContext())
            summaries.append(_summarise(kind, response, events))
    return events, summaries


@contextlib.contextmanager
def _lambda_output_to(logger: Logger, log: TextIO) -> Iterator[None]:
    """Send what Lambda would print (structured logs, EMF metrics) to ``log``."""
    stream_handler = logger.registered_handler
    assert isinstance(stream_handler, logging.StreamHandler)  # noqa: S101 - powertools' own
    previous = stream_handler.setStream(log)
    try:
        with contextlib.redirect_stdout(log):
            yield
    finally:
        stream_handler.setStream(previous)


def _summarise(kind: str, response: dict[str, Any], sink: list[bytes]) -> KindSummary:
    summary = KindSummary(kind, records=len(response["records"]))
    for record in response["records"]:
        summary.results[record["result"]] += 1
        data = base64.b64decode(record["data"]) if record["data"] else b""
        lines = [line for line in data.split(b"\n") if line]
        sink.extend(lines)
        summary.events += len(lines)
    return summary


def print_summary(summaries: list[KindSummary], events: list[bytes]) -> None:
    print(f"{'input kind':<26}{'records':>8}{'Ok':>5}{'Dropped':>9}{'Failed':>8}{'events':>8}")
    for s in summaries:
        print(
            f"{s.kind:<26}{s.records:>8}{s.results['Ok']:>5}{s.results['Dropped']:>9}"
            f"{s.results['ProcessingFailed']:>8}{s.events:>8}"
        )
    by_sourcetype = Counter(json.loads(line)["sourcetype"] for line in events)
    print(f"\n{'sourcetype':<34}{'events':>8}")
    for sourcetype, count in sorted(by_sourcetype.items()):
        print(f"{sourcetype:<34}{count:>8}")
    print(f"{'total':<34}{len(events):>8}")


def send_to_splunk(events: list[bytes]) -> int:
    url, token = os.environ.get("SPLUNK_HEC_URL"), os.environ.get("SPLUNK_HEC_TOKEN")
    if not url or not token:
        print("\nSplunk: not configured (set SPLUNK_HEC_URL and SPLUNK_HEC_TOKEN to send there)")
        return 0
    verify = os.environ.get("SPLUNK_HEC_VERIFY_TLS", "true").lower() not in {"0", "false", "no"}
    client = HecClient(url, token, verify_tls=verify)
    try:
        report = client.send(events)
    except HecError as error:
        print(f"\nSplunk HEC refused the events: {error}", file=sys.stderr)
        return 1
    acked = "acknowledged by the indexers" if report.acked else "accepted (ack not enabled)"
    print(f"\nSplunk: sent {report.events_sent} events in {report.batches} batches, {acked}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="NDJSON file to write")


def run(args: argparse.Namespace) -> int:
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = out.with_name("lambda-stdout.log")
    events, summaries = run_pipeline(log_path)
    out.write_bytes(b"".join(line + b"\n" for line in events))
    print("iot-defender-splunk demo: sample AWS messages -> transform Lambda -> HEC events\n")
    print_summary(summaries, events)
    print(f"\nHEC events: {out}\nLambda logs and EMF metrics: {log_path}")
    return send_to_splunk(events)
