"""What a SOC analyst would look at for each incident, computed from the transform's output.

Every figure here is read from the HEC events the real transform produced, never from the
incident's script: the script only says which device to look at and from when. If the
pipeline lost or mangled the data, the evidence shows it.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from iot_defender_splunk.simulator import Incident, Simulation
from iot_defender_splunk.simulator.fleet import Device
from iot_defender_splunk.simulator.incidents import (
    AuditFindings,
    AuthenticationStorm,
    ClonedCertificate,
    Exfiltration,
    OpenPorts,
)

Events = Sequence[dict[str, Any]]
MINUTE = 60.0
PERIOD = 300.0  # Detect's (and device reports') 5-minute datapoints
MB = 1_000_000


@dataclass(frozen=True)
class Series:
    label: str
    times: tuple[float, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class Band:
    """A shaded range (peers' min-max, or a baseline's mean +- 3 sd) over time."""

    label: str
    times: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]


@dataclass(frozen=True)
class Chart:
    """What one incident's picture shows: lines over time with a band, or bars per category."""

    title: str
    ylabel: str
    lines: tuple[Series, ...] = ()
    band: Band | None = None
    bars: tuple[tuple[str, float], ...] = ()
    marker: float | None = None  # when the incident starts
    log_scale: bool = False


@dataclass(frozen=True)
class Evidence:
    """Facts (label, value) to print, when the events first show the change, and the chart."""

    facts: tuple[tuple[str, str], ...]
    seen_at: float | None
    chart: Chart


def clock(t: float) -> str:
    return f"{dt.datetime.fromtimestamp(t, dt.UTC):%H:%M}"


def moment(t: float) -> str:
    return f"{dt.datetime.fromtimestamp(t, dt.UTC):%Y-%m-%d %H:%M:%S} UTC"


def metric_points(events: Events, thing: str, metric: str) -> list[tuple[float, dict[str, Any]]]:
    """(time, value) of one thing's datapoints of a Detect metric, in time order."""
    found = {
        e["time"]: e["event"]["value"]
        for e in events
        if e["sourcetype"] == "aws:iot:defender:metric"
        and e["fields"].get("thing") == thing
        and e["fields"].get("metric") == metric
    }
    return sorted(found.items())


def _ports(ports: Iterable[int]) -> str:
    return ", ".join(str(port) for port in sorted(ports)) or "none"


def _peers(simulation: Simulation, device: Device) -> list[str]:
    kind = device.thing_type.name
    return [peer.name for peer in simulation.fleet.of_type(kind) if peer.name != device.name]


def _open_ports(simulation: Simulation, incident: Incident, events: Events) -> Evidence:
    (device,) = incident.devices
    points = metric_points(events, device.name, "aws:listening-tcp-ports")
    before = {port for t, value in points if t < incident.start for port in value["ports"]}
    now = set(points[-1][1]["ports"]) if points else set()
    first = {port: min(t for t, v in points if port in v["ports"]) for port in now - before}
    peers = _peers(simulation, device)
    peer_counts: dict[float, list[float]] = defaultdict(list)
    for peer in peers:
        for t, value in metric_points(events, peer, "aws:num-listening-tcp-ports"):
            peer_counts[t - t % PERIOD].append(value["count"])
    counts = metric_points(events, device.name, "aws:num-listening-tcp-ports")
    times = tuple(sorted(peer_counts))
    peer_range = {count for values in peer_counts.values() for count in values}
    facts = (
        ("listening tcp before", _ports(before)),
        ("listening tcp at the end", _ports(now)),
        ("new ports", ", ".join(f"tcp/{p} from {clock(t)}" for p, t in sorted(first.items()))),
        (
            f"its {len(peers)} {device.thing_type.name} peers",
            f"{_span(peer_range)} listening tcp ports throughout" if peers else "none",
        ),
    )
    chart = Chart(
        f"{incident.id}: {device.name} listening TCP ports vs its peers",
        "listening TCP ports",
        lines=(Series(device.name, *_columns((t, v["count"]) for t, v in counts)),),
        band=Band(
            f"{len(peers)} peers (min-max)",
            times,
            tuple(min(peer_counts[t]) for t in times),
            tuple(max(peer_counts[t]) for t in times),
        )
        if peers
        else None,
        marker=incident.start,
    )
    return Evidence(facts, min(first.values(), default=None), chart)


def _span(values: set[float]) -> str:
    if not values:
        return "no"
    low, high = min(values), max(values)
    return f"{low:g}" if low == high else f"{low:g}-{high:g}"


def _columns(pairs: Iterable[tuple[float, float]]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    ordered = sorted(pairs)
    return tuple(t for t, _ in ordered), tuple(v for _, v in ordered)


def _exfiltration(simulation: Simulation, incident: Incident, events: Events) -> Evidence:
    (device,) = incident.devices
    points = [(t, v["count"]) for t, v in metric_points(events, device.name, "aws:all-bytes-out")]
    baseline = [value for t, value in points if t < incident.start]
    window = [(t, value) for t, value in points if t >= incident.start]
    mean, sd = statistics.mean(baseline), statistics.stdev(baseline)
    during = statistics.mean(value for _, value in window)
    above = [t for t, value in window if value > mean + 3 * sd]
    destinations = metric_points(events, device.name, "aws:destination-ip-addresses")
    known = {cidr for t, v in destinations if t < incident.start for cidr in v["cidrs"]}
    new = sorted({cidr for t, v in destinations if t >= incident.start for cidr in v["cidrs"]})
    facts = (
        (
            f"bytes out before {clock(incident.start)}",
            f"mean {mean:,.0f} +- {sd:,.0f} bytes per 5 min ({len(baseline)} datapoints)",
        ),
        (
            f"bytes out from {clock(incident.start)}",
            f"mean {during:,.0f} bytes per 5 min, {during / mean:.1f}x its baseline",
        ),
        ("above mean + 3 sd", f"{len(above)} of {len(window)} datapoints"),
        ("new destinations", ", ".join(c for c in new if c not in known) or "none"),
    )
    times, values = _columns((t, v / MB) for t, v in points)
    chart = Chart(
        f"{incident.id}: {device.name} bytes out vs its own baseline",
        "bytes out per 5 minutes (MB, log scale)",
        lines=(Series(device.name, times, values),),
        band=Band(
            "baseline mean +- 3 sd",
            (times[0], times[-1]),
            (max(mean - 3 * sd, 1.0) / MB,) * 2,
            ((mean + 3 * sd) / MB,) * 2,
        ),
        marker=incident.start,
        log_scale=True,
    )
    return Evidence(facts, min(above, default=None), chart)


def _per_minute(times: Iterable[float], start: float, end: float) -> tuple[float, ...]:
    counts = Counter(t - t % MINUTE for t in times)
    first = start - start % MINUTE
    return tuple(float(counts[first + n * MINUTE]) for n in range(int((end - first) // MINUTE)))


def _authentication_storm(simulation: Simulation, incident: Incident, events: Events) -> Evidence:
    change = incident.script.change
    assert isinstance(change, AuthenticationStorm)  # noqa: S101 - dispatched on its type
    failures = [
        (e["time"], e["event"]["sourceIp"])
        for e in events
        if e["fields"].get("event_type") == "Connection.AuthNError"
    ]
    per_source = Counter(ip for _, ip in failures)
    storm = [t for t, ip in failures if ip == change.source_ip]
    others = [t for t, ip in failures if ip != change.source_ip]
    minutes = _per_minute(storm, simulation.start, simulation.end)
    rest = [count for ip, count in per_source.items() if ip != change.source_ip]
    facts = (
        (
            change.source_ip,
            f"{len(storm)} failures {clock(min(storm))}-{clock(max(storm))} UTC, "
            f"peak {max(minutes):g} a minute"
            if storm
            else "no failures",
        ),
        (
            "every other address",
            f"{len(rest)} addresses, {sum(rest)} failures in {simulation.hours:g} h, "
            f"at most {max(rest, default=0)} from one",
        ),
    )
    grid = tuple(
        simulation.start - simulation.start % MINUTE + n * MINUTE for n in range(len(minutes))
    )
    chart = Chart(
        f"{incident.id}: authentication failures from {change.source_ip}",
        "Connection.AuthNError per minute",
        lines=(
            Series(change.source_ip, grid, minutes),
            Series(
                "all other addresses", grid, _per_minute(others, simulation.start, simulation.end)
            ),
        ),
        marker=incident.start,
    )
    return Evidence(facts, min(storm, default=None), chart)


def _addresses_per_certificate(events: Events) -> dict[str, list[tuple[float, str]]]:
    """Certificate id -> (time, source address) of its lifecycle connects."""
    found: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for e in events:
        body = e["event"]
        if e["sourcetype"] == "aws:iot:lifecycle" and body["eventType"] == "connected":
            found[body["principalIdentifier"]].append((e["time"], body["ipAddress"]))
    return found


def _distinct_per_period(seen: Iterable[tuple[float, str]]) -> Counter[float]:
    """5-minute period start -> distinct addresses in it (0 for a period without any)."""
    buckets: dict[float, set[str]] = defaultdict(set)
    for t, ip in seen:
        buckets[t - t % PERIOD].add(ip)
    return Counter({bucket: len(ips) for bucket, ips in buckets.items()})


def _periods(simulation: Simulation) -> tuple[float, ...]:
    first = simulation.start - simulation.start % PERIOD
    return tuple(first + n * PERIOD for n in range(int((simulation.end - first) // PERIOD)))


def _cloned_certificate(simulation: Simulation, incident: Incident, events: Events) -> Evidence:
    (device,) = incident.devices
    by_certificate = _addresses_per_certificate(events)
    own = by_certificate.get(device.certificate, [])
    before = {ip for t, ip in own if t < incident.start}
    since = [(t, ip) for t, ip in own if t >= incident.start]
    new = sorted({ip for _, ip in since} - before)
    first_clone = min((t for t, ip in since if ip in new), default=None)
    others = [seen for cert, seen in by_certificate.items() if cert != device.certificate]
    most_elsewhere = max((len({ip for _, ip in seen}) for seen in others), default=0)
    facts = (
        ("certificate", f"{device.certificate[:16]}... (thing {device.name})"),
        (f"addresses before {clock(incident.start)}", ", ".join(sorted(before)) or "none"),
        (
            f"addresses from {clock(incident.start)}",
            f"{len({ip for _, ip in since})} ({', '.join(new)} new), {len(since)} connects",
        ),
        (
            "every other certificate",
            f"at most {most_elsewhere} address(es) in {simulation.hours:g} h",
        ),
    )
    grid = _periods(simulation)
    own_counts = _distinct_per_period(own)
    elsewhere = [_distinct_per_period(seen) for seen in others]
    chart = Chart(
        f"{incident.id}: distinct source addresses of {device.name}'s certificate",
        "distinct source addresses per 5 minutes",
        lines=(
            Series(f"{device.name}'s certificate", grid, tuple(own_counts[t] for t in grid)),
            Series(
                "most of any other certificate",
                grid,
                tuple(max((counts[t] for counts in elsewhere), default=0) for t in grid),
            ),
        ),
        marker=incident.start,
    )
    return Evidence(facts, first_clone, chart)


def _finding_label(finding: dict[str, Any]) -> str:
    return f"{finding['check_name']} ({finding['severity']})"


def _finding_text(finding: dict[str, Any]) -> str:
    resource = f"{finding['resource_type']} {finding['resource_id'][:16]}"
    return f"{resource}: {finding['reasonForNonCompliance']}"


def _audit_findings(simulation: Simulation, incident: Incident, events: Events) -> Evidence:
    findings = [e for e in events if e["sourcetype"] == "aws:iot:defender:audit:finding"]
    checks = [e["event"] for e in events if e["sourcetype"] == "aws:iot:defender:audit:check"]
    non_compliant = sum(c["checkRunStatus"] == "COMPLETED_NON_COMPLIANT" for c in checks)
    facts = (
        *((_finding_label(f["event"]), _finding_text(f["event"])) for f in findings),
        ("checks run", f"{len(checks)}, {non_compliant} non-compliant"),
    )
    chart = Chart(
        f"{incident.id}: non-compliant resources per audit check",
        "non-compliant resources",
        bars=tuple(
            (c["check_name"].removesuffix("_CHECK"), float(c["nonCompliantResourcesCount"]))
            for c in checks
        ),
    )
    return Evidence(facts, min((f["time"] for f in findings), default=None), chart)


_BY_CHANGE: dict[type, Callable[[Simulation, Incident, Events], Evidence]] = {
    OpenPorts: _open_ports,
    Exfiltration: _exfiltration,
    AuthenticationStorm: _authentication_storm,
    ClonedCertificate: _cloned_certificate,
    AuditFindings: _audit_findings,
}


def evidence(simulation: Simulation, incident: Incident, events: Events) -> Evidence:
    """The incident's evidence in the events (the transform's output for ``simulation``)."""
    return _BY_CHANGE[type(incident.script.change)](simulation, incident, events)
