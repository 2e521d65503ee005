"""`make demo`: a small simulated fleet's last hours, with its incidents, through the real
transform Lambda; then, per incident, the evidence an analyst would look at and the app's
detections that target it.

Everything is written to --out-dir (default build/demo): events.ndjson (the HEC events),
one PNG per incident, response.ndjson (the responder's audit event) and lambda.log. Offline,
"would fire" means the detection's rule applied locally to the events (for the detections
the demo can read); live, "fired" means its saved search ran in Splunk.

Live: with SPLUNK_HEC_URL and SPLUNK_HEC_TOKEN the events are sent (and acknowledged when the
token has indexer acknowledgement on) into SPLUNK_INDEX (default iot_security); with
SPLUNK_URL and SPLUNK_USERNAME/SPLUNK_PASSWORD (or SPLUNK_TOKEN) it checks the app's
iot_defender_index macro, waits until the events are searchable and runs the detections'
saved searches at the simulation's end. SPLUNK_HEC_VERIFY_TLS / SPLUNK_VERIFY_TLS=false
accept a lab's self-signed certificate.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import orjson
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from iot_defender_splunk import cli
from iot_defender_splunk.commands.simulate import (
    end_argument,
    hours_argument,
    positive_int,
    simulation_end,
)
from iot_defender_splunk.hec import HecClient, HecError
from iot_defender_splunk.simulator import (
    Incident,
    Simulation,
    TransformRun,
    run_transform,
    simulate_fleet,
)
from iot_defender_splunk.simulator.delivery import Record, firehose_batches
from iot_defender_splunk.simulator.incidents import Target
from iot_defender_splunk.simulator.runner import DEFAULT_INDEX
from iot_defender_splunk.story import evidence, rules
from iot_defender_splunk.story.detections import Detection, SourcesMissingError, detection
from iot_defender_splunk.story.live import (
    LiveError,
    SearchHead,
    Splunk,
    indexes_in,
    shipped_index_macro,
)
from shared.settings import ConfigError
from transform.config import load_settings
from transform.sourcetypes import UNPARSED

NAME = "demo"
SUMMARY = "the story: a simulated fleet's incidents, their evidence, detections and response"
DEFAULT_OUT = Path("build") / "demo"
DEFAULT_DEVICES = 16
DEFAULT_SEED = 1
EXTRA = "iot-defender-splunk[demo]"
SEARCHABLE_SECONDS = 120.0
SEARCH_SECONDS = 120.0
OPEN_PORT = "open-port"  # the incident the response step answers
LEGEND = (
    "'would fire': the detection's rule applied locally to these events (the demo's reading "
    "of its search); with SPLUNK_URL set, 'fired' means its saved search ran in Splunk."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--devices", type=positive_int, default=DEFAULT_DEVICES, help="things (default 16)"
    )
    parser.add_argument("--hours", type=hours_argument, default=6.0, help="hours (default 6)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="fleet seed (default 1)")
    parser.add_argument("--end", type=end_argument, help="ISO-8601 end (default now)")
    parser.add_argument(
        "--no-detect",
        dest="detect",
        action="store_false",
        help="metrics as device metric reports, not Detect's exports",
    )
    parser.add_argument(
        "--out-dir", type=Path, default=DEFAULT_OUT, help="where to write (default build/demo)"
    )


def _index(environ: Mapping[str, str]) -> str:
    index = environ.get("SPLUNK_INDEX") or DEFAULT_INDEX
    try:
        load_settings({"SPLUNK_INDEX": index})
    except ConfigError as error:
        raise cli.CommandError(str(error)) from None
    return index


def _hec_client(environ: Mapping[str, str]) -> HecClient | None:
    url, token = environ.get("SPLUNK_HEC_URL"), environ.get("SPLUNK_HEC_TOKEN")
    if not url and not token:
        return None
    if not url or not token:
        raise cli.CommandError("set both SPLUNK_HEC_URL and SPLUNK_HEC_TOKEN, or neither")
    verify = environ.get("SPLUNK_HEC_VERIFY_TLS", "true").lower() not in {"0", "false", "no"}
    try:
        return HecClient(url, token, verify_tls=verify)
    except ValueError as error:
        raise cli.CommandError(f"SPLUNK_HEC_URL: {error}") from None


def _search_head(environ: Mapping[str, str]) -> SearchHead | None:
    try:
        return SearchHead.from_environment(environ)
    except LiveError as error:
        raise cli.CommandError(str(error)) from None


def _write(path: Path, lines: Sequence[bytes]) -> None:
    try:
        path.write_bytes(b"".join(line + b"\n" for line in lines))
    except OSError as error:
        raise cli.CommandError(f"cannot write {path}: {error.strerror}") from None


def _open_out_dir(out: Path) -> TextIO:
    """The output folder, made if needed, and its Lambda log opened for writing."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        return (out / "lambda.log").open("w", encoding="utf-8")
    except OSError as error:
        raise cli.CommandError(f"cannot write to {out}: {error.strerror}") from None


def run(args: argparse.Namespace) -> int:
    console = Console(highlight=False, markup=False)
    index = _index(os.environ)
    hec = _hec_client(os.environ)
    head = _search_head(os.environ)
    end = simulation_end(args.end, args.hours, time.time())
    simulation = simulate_fleet(
        devices=args.devices, hours=args.hours, seed=args.seed, end=end, detect=args.detect
    )
    out: Path = args.out_dir
    with _open_out_dir(out) as log:
        result = run_transform(simulation.batches, index=index, log=log)
        events = [orjson.loads(line) for line in result.events]
        _write(out / "events.ndjson", result.events)
        console.print(_headline(simulation, index))
        console.print(LEGEND, style="dim")
        _warn_if_not_searched(console, index, shipped_index_macro(), "the app's default")
        try:
            targets = {
                i.id: [detection(t.detection) for t in i.script.targets]
                for i in simulation.incidents
            }
        except SourcesMissingError as error:
            raise cli.CommandError(str(error)) from None
        found = {i.id: evidence.evidence(simulation, i, events) for i in simulation.incidents}
        charts = _draw_charts(console, found, out)
        for incident in simulation.incidents:
            shown = found[incident.id]
            console.print(_panel(simulation, incident, shown, targets[incident.id], events))
            if incident.id in charts:
                console.print(f"  picture: {charts[incident.id]}")
        responses = _response_step(console, simulation, events, index, log)
    _write(out / "response.ndjson", responses)
    console.print(_totals(simulation, result, events, out))
    failed = result.results()["ProcessingFailed"]
    if failed:
        raise cli.CommandError(f"{failed} records failed in the transform; see {out}/lambda.log")
    if hec is not None:
        _send(console, hec, result.events + responses)
    if head is not None:
        _live_detections(
            console,
            head=head,
            simulation=simulation,
            index=index,
            sent=len(result.events),
            targets=targets,
        )
    return 0


def _headline(simulation: Simulation, index: str) -> Text:
    source = "Detect exports" if simulation.detect else "device metric reports"
    return Text.assemble(
        ("iot-defender-splunk demo: ", "bold"),
        f"{len(simulation.fleet.devices)} devices, {simulation.hours:g} h to "
        f"{evidence.moment(simulation.end)} ({source}), {len(simulation.incidents)} incidents, "
        f"through the real transform into index {index}",
    )


def _warn_if_not_searched(console: Console, index: str, definition: str, whose: str) -> None:
    """A loud line when the events' index is not one the app's searches read."""
    if index not in indexes_in(definition):
        console.print(
            Text(
                f"WARNING: the events go to index {index}, but {whose} iot_defender_index "
                f"macro searches {definition or 'nothing'}: the app's searches will not see "
                "them (set SPLUNK_INDEX or override the macro in local/macros.conf)",
                style="bold yellow",
            )
        )


def _draw_charts(
    console: Console, found: Mapping[str, evidence.Evidence], out: Path
) -> dict[str, Path]:
    """Incident id -> its PNG; none (and one line saying why) without matplotlib."""
    try:
        from iot_defender_splunk.story import plots  # noqa: PLC0415 - the demo extra
    except ImportError:
        console.print(Text(f"no pictures: install {EXTRA} for the plots", style="yellow"))
        return {}
    drawn = {}
    for incident_id, shown in found.items():
        path = out / f"{incident_id}.png"
        try:
            plots.draw(shown.chart, path)
        except OSError as error:
            raise cli.CommandError(f"cannot write {path}: {error.strerror}") from None
        drawn[incident_id] = path
    return drawn


def _panel(
    simulation: Simulation,
    incident: Incident,
    found: evidence.Evidence,
    targets: list[Detection],
    events: list[Any],
) -> Panel:
    grid = _facts()
    devices = ", ".join(
        f"{d.name} ({d.thing_type.name}, firmware {d.firmware}, {d.segment})"
        for d in incident.devices
    )
    _add(grid, "device", devices or "none: an outside address")
    _add(grid, "what changed", incident.changes)
    seen = evidence.moment(found.seen_at) if found.seen_at is not None else "not in the events"
    _add(grid, "when", f"first seen {seen}")
    for label, value in found.facts:
        _add(grid, label, value)
    detections = Table.grid(padding=(0, 2))
    detections.add_column(no_wrap=True)
    detections.add_column(overflow="fold")  # a long stem folds, never loses its end
    for target, spec in zip(incident.script.targets, targets, strict=True):
        detections.add_row(
            _verdict(simulation, target, spec, events), Text(f"{spec.name} [{spec.stem}]")
        )
    _add(grid, "detections", detections)
    return Panel(grid, title=Text(incident.title, style="bold"), subtitle=incident.id)


def _facts() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    return grid


def _add(grid: Table, label: str, value: str | Table) -> None:
    """One row of facts; text is shown as it is (device data is never read as markup)."""
    grid.add_row(Text(label), Text(value) if isinstance(value, str) else value)


def _verdict(simulation: Simulation, target: Target, spec: Detection, events: list[Any]) -> Text:
    """Whether the detection would fire on the events, or why the demo cannot say."""
    if target.history_hours > simulation.hours:
        return Text(f"needs {target.history_hours:g} h of history", style="dim")
    if target.detect_only and not simulation.detect:
        return Text("needs Detect's alarms", style="dim")
    flagged = spec.would_fire(events, simulation.end)
    if flagged is None:
        return Text("no local rule: Splunk only", style="dim")
    if not flagged:
        return Text("would NOT fire", style="bold red")
    return Text(f"would fire on {', '.join(sorted(flagged))}", style="green")


def _risky_findings(device: str, events: list[Any], end: float) -> list[str]:
    """What the risky-port alert says of the device, as the playbook words its findings."""
    window = rules.schedule_window(detection("risky_port_listening").schedule, end)
    ports = sorted(port for thing, port in rules.risky_ports(events, window) if thing == device)
    return [f"listens on tcp/{port} ({rules.port_risk(port, 'tcp')})" for port in ports]


def _find_the_checkouts_responder() -> None:
    """The responder (respond/) is not in the wheel: run from a checkout by the installed
    command, not from the checkout's root with ``python -m``, it is found only if the root is
    on the import path too."""
    root = str(rules.REPO)
    if (rules.REPO / "respond" / "handler.py").is_file() and root not in sys.path:
        sys.path.append(root)


def _response_step(
    console: Console, simulation: Simulation, events: list[Any], index: str, log: TextIO
) -> list[bytes]:
    """The open-port device quarantined by the real responder on moto; its audit events as
    the transform makes them (none, and one line why, without the demo extra)."""
    incident = next((i for i in simulation.incidents if i.id == OPEN_PORT), None)
    if incident is None or not incident.devices:
        return []
    _find_the_checkouts_responder()
    try:
        from iot_defender_splunk.story import respond_step  # noqa: PLC0415 - the demo extra
    except ImportError as error:
        needs = (
            "a checkout of the repository" if (error.name or "").startswith("respond") else EXTRA
        )
        console.print(Text(f"no response step: it needs {needs} (moto)", style="yellow"))
        return []
    (device,) = incident.devices
    findings = _risky_findings(device.name, events, simulation.end)
    request = respond_step.playbook_request(
        device, findings, detection("risky_port_listening").name
    )
    done = respond_step.quarantine(device, request, log)
    first = len(simulation.messages)
    records = [Record(time.time(), "response", data) for data in done.records]
    audit = run_transform(firehose_batches(records, first=first), index=index, log=log).events
    grid = _facts()
    _add(
        grid,
        "request",
        f"{request['action']} {request['thing_name']} by "
        f"{request['requested_by']} ({request['request_id']})",
    )
    _add(grid, "answer", f"{done.answer['status']}: {done.answer['message']}")
    _add(grid, "groups before", ", ".join(done.groups_before) or "none")
    _add(grid, "groups after", ", ".join(done.groups_after) or "none")
    _add(grid, "certificate", f"{done.certificate_before} -> {done.certificate_after}")
    for line in audit:
        _add(grid, "audit event", _audit_line(orjson.loads(line)))
    title = "Response: IoT Open Port Response -> the responder, on moto's AWS IoT"
    console.print(Panel(grid, title=Text(title, style="bold"), subtitle="response"))
    return audit


def _audit_line(event: dict[str, Any]) -> str:
    body = event["event"]
    return (
        f"{event['sourcetype']} at {evidence.moment(event['time'])}: {body['action']} "
        f"{body['status']} on {body['target'].get('thingName')}, by {body['requestedBy']}"
    )


def _totals(simulation: Simulation, result: TransformRun, events: list[Any], out: Path) -> str:
    sourcetypes = Counter(e["sourcetype"] for e in events)
    results = result.results()
    listed = ", ".join(f"{n:,} {s}" for s, n in sourcetypes.most_common())
    return (
        f"{len(events):,} HEC events from {len(simulation.messages):,} records in "
        f"{len(result.outcomes)} batches ({results['Ok']:,} Ok, "
        f"{results['ProcessingFailed']} failed, {sourcetypes[UNPARSED]} unparsed): {listed}; "
        f"written to {out}"
    )


def _send(console: Console, hec: HecClient, lines: list[bytes]) -> None:
    try:
        report = hec.send(lines)
    except HecError as error:
        raise cli.CommandError(f"Splunk HEC refused the events: {error}") from None
    acked = "acknowledged by the indexers" if report.acked else "accepted (ack not enabled)"
    console.print(
        f"Splunk HEC: sent {report.events_sent:,} events in {report.batches} batches, {acked}"
    )


def _live_detections(
    console: Console,
    *,
    head: SearchHead,
    simulation: Simulation,
    index: str,
    sent: int,
    targets: dict[str, list[Detection]],
) -> None:
    try:
        splunk = Splunk.connect(head)
        _warn_if_not_searched(console, index, splunk.index_macro(), "Splunk's")
        found = splunk.wait_until_searchable(
            index, simulation.start, simulation.end, sent, SEARCHABLE_SECONDS
        )
        console.print(f"Splunk: {found:,} of the {sent:,} events searchable in index {index}")
        ran: dict[str, list[dict[str, Any]]] = {}
        for incident in simulation.incidents:
            for spec in targets[incident.id]:
                if spec.stem not in ran:
                    ran[spec.stem] = splunk.run_saved_search(
                        spec.name, simulation.end, SEARCH_SECONDS
                    )
                console.print(_fired(incident, spec, ran[spec.stem]))
    except LiveError as error:
        raise cli.CommandError(str(error)) from None


def _fired(incident: Incident, spec: Detection, results: list[dict[str, Any]]) -> Text:
    things = sorted({str(row["thing"]) for row in results if row.get("thing")})
    head = Text(f"  {incident.id}: {spec.name}: ")
    if not results:
        return head + Text("did not fire in Splunk", style="red")
    on = f" on {', '.join(things)}" if things else ""
    return head + Text(f"fired in Splunk, {len(results)} result(s){on}", style="green")
