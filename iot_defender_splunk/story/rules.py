"""Some detections' rules re-derived in Python, on HEC events of any origin: what lets the
demo say a detection "would fire" without a Splunk, and the simulator's tests prove each
incident meets its detections' rules.

Each function takes points or events already placed in a search's time range (earliest,
latest). ``OFFLINE_RULES`` applies them as each detection's schedule window would; a rule here
is a local reading of the search, never a substitute for running it in Splunk.
"""

from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

# The app's sources in a checkout of the repository (the wheel does not ship them).
REPO = Path(__file__).resolve().parents[2]
APP = REPO / "splunk_app" / "iot_defender_security"
Window = tuple[float, float]
# (time, thing, metric, origin, value): one count datapoint as iot_defender_datapoint_volume
# keeps it; device reports and Detect exports are separate series (origin).
Datapoint = tuple[float, str, str, str, float]
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def relative_seconds(text: str) -> int:
    """'-24h@m' -> 86400; 'now' -> 0. Any other form raises ValueError: read as 0 it would
    silently give a window of the wrong length."""
    if text == "now":
        return 0
    match = re.fullmatch(r"-(\d+)([smhdw])(?:@[smhd])?", text)
    if not match:
        raise ValueError(f"unsupported relative time {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def schedule_window(schedule: dict[str, Any], now: float) -> Window:
    """A schedule's time range at ``now``, snapped to the minute, hour or day (UTC)."""

    def at(text: str) -> float:
        t = now - relative_seconds(text)
        snap = re.search(r"@([mhd])$", text)
        return t - t % _UNITS[snap.group(1)] if snap else t

    return at(schedule["earliest_time"]), at(schedule["latest_time"])


def buckets_above_baseline(
    points: Iterable[tuple[float, str, float]], window: Window, *, current: int, floor: float
) -> dict[str, list[float]]:
    """Key -> its 5-minute buckets of the last ``current`` seconds above the zero-filled
    baseline's mean + 3 standard deviations and ``floor``, as the auth-failure, surge and
    flapping detections compute it."""
    earliest, latest = window
    current_start = latest - current
    buckets: dict[tuple[str, float], float] = defaultdict(float)
    for t, key, value in points:
        if earliest <= t < latest:
            buckets[key, t - t % 300] += value
    n = math.floor((current_start - earliest) / 300)
    spikes = {}
    for key in {key for key, _ in buckets}:
        base = [v for (k, b), v in buckets.items() if k == key and b < current_start]
        avg = sum(base) / n
        stdev = math.sqrt(max((sum(v * v for v in base) - n * avg * avg) / (n - 1), 0))
        bound = max(avg + 3 * stdev, floor)
        now = [b for (k, b), v in buckets.items() if k == key and b >= current_start and v > bound]
        if now:
            spikes[key] = sorted(now)
    return spikes


def volume_spikes(
    points: Iterable[Datapoint], window: Window, floor: Callable[[str], float]
) -> set[str]:
    """Things with a datapoint of the window's last hour above their own baseline (at least
    12 datapoints before it) of the same metric and origin, as iot_defender_volume_spikes
    judges it."""
    earliest, latest = window
    series: dict[tuple[str, str, str], tuple[list[float], list[float]]] = defaultdict(
        lambda: ([], [])
    )
    for t, thing, metric, origin, value in points:
        if earliest <= t < latest:
            series[thing, metric, origin][t >= latest - 3600].append(value)
    flagged = set()
    for (thing, metric, _), (base, now) in series.items():
        if len(base) < 12 or not now:
            continue
        avg = sum(base) / len(base)
        stdev = math.sqrt(sum((v - avg) ** 2 for v in base) / (len(base) - 1))
        if max(now) > max(avg + 3 * stdev, floor(metric)):
            flagged.add(thing)
    return flagged


def count_datapoints(events: Iterable[dict[str, Any]], metrics: Iterable[str]) -> list[Datapoint]:
    """Count metrics' datapoints, one per thing, metric, origin and time (the highest value, as
    iot_defender_datapoint_volume keeps it)."""
    wanted = set(metrics)
    volumes: dict[tuple[float, str, str, str], float] = {}
    for e in events:
        if e["sourcetype"] == "aws:iot:defender:metric" and e["fields"].get("metric") in wanted:
            key = (e["time"], e["fields"]["thing"], e["fields"]["metric"], e["fields"]["origin"])
            volumes[key] = max(volumes.get(key, 0.0), float(e["event"]["value"]["count"]))
    return [(t, thing, metric, origin, v) for (t, thing, metric, origin), v in volumes.items()]


def connections(events: Iterable[dict[str, Any]]) -> list[tuple[float, str, str]]:
    """(time, client id, source address) of lifecycle connects and Connect log entries."""
    found = []
    for e in events:
        body = e["event"]
        if e["sourcetype"] == "aws:iot:lifecycle" and body["eventType"] == "connected":
            found.append((e["time"], body["clientId"], body["ipAddress"]))
        elif e["sourcetype"] == "aws:iot:log" and body["eventType"] == "Connect":
            found.append((e["time"], body["clientId"], body["sourceIp"]))
    return found


def most_addresses_in_an_hour(
    seen: Iterable[tuple[float, str, str]], window: Window
) -> dict[str, int]:
    """Client id -> the most distinct addresses in any hour-long window of the range."""
    earliest, latest = window
    inside = [(t, c, ip) for t, c, ip in seen if earliest <= t < latest]
    most: dict[str, int] = defaultdict(int)
    for t, client, _ in inside:
        ips = {ip for u, c, ip in inside if c == client and t <= u < t + 3600}
        most[client] = max(most[client], len(ips))
    return most


def authentication_bursts(events: Iterable[dict[str, Any]], window: Window) -> set[str]:
    """Sources with BURST_ERRORS or more Connection.AuthNError entries in a 5-minute interval."""
    earliest, latest = window
    buckets: dict[tuple[str, float], int] = defaultdict(int)
    for e in events:
        t = e["time"]
        if e["fields"].get("event_type") == "Connection.AuthNError" and earliest <= t < latest:
            buckets[e["event"]["sourceIp"], t - t % 300] += 1
    return {ip for (ip, _), n in buckets.items() if n >= BURST_ERRORS}


@cache
def _risky_ports() -> dict[tuple[int, str], str]:
    path = APP / "lookups" / "iot_defender_risky_ports.csv"
    with path.open(encoding="utf-8") as handle:
        return {(int(row["port"]), row["transport"]): row["risk"] for row in csv.DictReader(handle)}


def port_risk(port: int, transport: str) -> str | None:
    """The iot_defender_risky_ports lookup's risk for a port ("critical", "high", ...)."""
    return _risky_ports().get((port, transport))


def risky_ports(events: Iterable[dict[str, Any]], window: Window) -> set[tuple[str, int]]:
    """(thing, port) listening in the range on a port the lookup rates critical or high."""
    earliest, latest = window
    found = set()
    for e in events:
        metric = e["fields"].get("metric", "")
        if metric.startswith("aws:listening-") and earliest <= e["time"] < latest:
            transport = metric.split("-")[1]
            for port in e["event"]["value"]["ports"]:
                if port_risk(port, transport) in {"critical", "high"}:
                    found.add((e["fields"]["thing"], port))
    return found


def port_count_changes(events: Iterable[dict[str, Any]], window: Window) -> set[str]:
    """Things whose listening-port count in the last hour left its range of the hours before
    (at least 6 baseline datapoints), as "IoT - Listening Port Count Changed" judges it."""
    earliest, latest = window
    series: dict[tuple[str, str], tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for e in events:
        metric = e["fields"].get("metric", "")
        if metric.startswith("aws:num-listening-") and earliest <= e["time"] < latest:
            current = e["time"] >= latest - 3600
            series[e["fields"]["thing"], metric][current].append(e["event"]["value"]["count"])
    return {
        thing
        for (thing, _), (base, now) in series.items()
        if len(base) >= 6 and now and (max(now) > max(base) or min(now) < min(base))
    }


# The iot_defender_spike_floor macro's case(): the least a datapoint must reach to be a spike.
SPIKE_FLOORS = {
    "aws:all-bytes-out": 5_000_000,
    "aws:all-packets-out": 5_000,
    "aws:num-messages-sent": 600,
    "aws:message-byte-size": 1_000_000,
    "aws:num-established-tcp-connections": 50,
}
OUTBOUND_FLOORS = {m: SPIKE_FLOORS[m] for m in ("aws:all-bytes-out", "aws:all-packets-out")}
# "Client ID Connecting From Many Source IPs": distinct addresses in an hour that alert.
MANY_ADDRESSES = 3
# "Authentication Error Burst From Source IP": errors in one 5-minute interval that alert.
BURST_ERRORS = 20
# "Fleet-Wide Authentication Error Surge": the AWS/IoT metrics it reads, and its floors.
AUTH_ERROR_METRICS = frozenset(
    {
        "Connect.AuthError",
        "Connection.AuthNError",
        "PublishIn.AuthError",
        "PublishOut.AuthError",
        "Subscribe.AuthError",
    }
)
NOISY_AUTH_ERROR_METRIC, NOISY_AUTH_ERROR_FLOOR, AUTH_ERROR_FLOOR = "Connection.AuthNError", 50, 10


def authentication_error_points(events: Iterable[dict[str, Any]]) -> list[tuple[float, str, float]]:
    """(time, metric name, sum) of the CloudWatch datapoints of the surge's AWS/IoT metrics."""
    return [
        (e["time"], e["fields"]["metric_name"], float(e["event"]["value"]["sum"]))
        for e in events
        if e["sourcetype"] == "aws:iot:cloudwatch:metric"
        and e["fields"].get("metric_name") in AUTH_ERROR_METRICS
    ]


def auth_error_floor(metric: str) -> float:
    """The surge's error_floor: the noisy Connection.AuthNError needs more errors to alert."""
    return NOISY_AUTH_ERROR_FLOOR if metric == NOISY_AUTH_ERROR_METRIC else AUTH_ERROR_FLOOR


def surging_metrics(points: Iterable[tuple[float, str, float]], window: Window) -> set[str]:
    """Metric names with a 5-minute bucket of the last 15 minutes above their own baseline and
    floor, each metric baselined alone, as "Fleet-Wide Authentication Error Surge" does."""
    by_metric: dict[str, list[tuple[float, str, float]]] = defaultdict(list)
    for point in points:
        by_metric[point[1]].append(point)
    return {
        metric
        for metric, series in by_metric.items()
        if buckets_above_baseline(series, window, current=900, floor=auth_error_floor(metric))
    }


def lifecycle_presence(events: Iterable[dict[str, Any]]) -> list[tuple[float, str, float]]:
    """(time, client id, 1) per connect and disconnect, as "Connection Flapping" counts them
    (subscribe and unsubscribe events are not flapping)."""
    return [
        (e["time"], e["event"]["clientId"], 1.0)
        for e in events
        if e["sourcetype"] == "aws:iot:lifecycle"
        and e["event"]["eventType"] in {"connected", "disconnected"}
    ]


def flapping_clients(presence: Iterable[tuple[float, str, float]], window: Window) -> set[str]:
    """Client ids with a 5-minute bucket of the last hour above their baseline and 10."""
    return set(buckets_above_baseline(presence, window, current=3600, floor=10))


Rule = Callable[[Sequence[dict[str, Any]], Window], set[str]]


def _risky(events: Sequence[dict[str, Any]], window: Window) -> set[str]:
    return {thing for thing, _ in risky_ports(events, window)}


def _outbound(events: Sequence[dict[str, Any]], window: Window) -> set[str]:
    points = count_datapoints(events, OUTBOUND_FLOORS)
    return volume_spikes(points, window, SPIKE_FLOORS.__getitem__)


def _surge(events: Sequence[dict[str, Any]], window: Window) -> set[str]:
    return surging_metrics(authentication_error_points(events), window)


def _many_addresses(events: Sequence[dict[str, Any]], window: Window) -> set[str]:
    most = most_addresses_in_an_hour(connections(events), window)
    return {client for client, count in most.items() if count >= MANY_ADDRESSES}


def _flapping(events: Sequence[dict[str, Any]], window: Window) -> set[str]:
    return flapping_clients(lifecycle_presence(events), window)


# Detection file stem -> its rule applied locally: what it would alert on (things, source
# addresses or metric names) given the events of its schedule window.
OFFLINE_RULES: dict[str, Rule] = {
    "risky_port_listening": _risky,
    "listening_port_count_changed": port_count_changes,
    "outbound_volume_spike_vs_device_baseline": _outbound,
    "authentication_error_burst_from_source_ip": authentication_bursts,
    "fleet_wide_authentication_error_surge": _surge,
    "client_id_connecting_from_many_source_ips": _many_addresses,
    "connection_flapping": _flapping,
}
