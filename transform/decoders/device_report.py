"""Device-side metrics reports (no Detect needed), exploded into the same metric events Detect
exports, so every search works with or without Detect."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Any

from transform.context import RecordContext
from transform.sourcetypes import METRIC
from transform.timestamps import epoch_seconds
from transform.validation import checker

KIND = "device_report"
ORIGIN = "device-report"

# Fan-out caps. One report becomes one event per custom metric, so a 128 KB report of tiny
# custom metrics would fan out to megabytes of envelopes; and one long list makes one huge
# event. Past a cap, the first entries (in report order) become events as usual and the rest
# go, whole, into one unparsed event (reason_code over_limit): reported, never silently cut.
MAX_CUSTOM_METRICS = 100
MAX_LIST_ENTRIES = 512

# remote_addr with a port: "[ipv6]:port" (or "[ipv6]"), else "host:port" split at the last colon.
_BRACKETED = re.compile(r"\[(?P<host>[^\]]*)\](?::[0-9]{1,5})?")
_WITH_PORT = re.compile(r"(?P<host>.*):[0-9]{1,5}")

# Device Defender's short key names (for constrained devices) and their long forms.
_LONG_NAMES = {
    "hed": "header",
    "rid": "report_id",
    "v": "version",
    "met": "metrics",
    "tc": "tcp_connections",
    "ec": "established_connections",
    "cs": "connections",
    "rad": "remote_addr",
    "lp": "local_port",
    "li": "local_interface",
    "t": "total",
    "tp": "listening_tcp_ports",
    "up": "listening_udp_ports",
    "pts": "ports",
    "pt": "port",
    "if": "interface",
    "ns": "network_stats",
    "bi": "bytes_in",
    "bo": "bytes_out",
    "pi": "packets_in",
    "po": "packets_out",
    "cmet": "custom_metrics",
}
_NETWORK_STATS = {
    "bytes_in": "aws:all-bytes-in",
    "bytes_out": "aws:all-bytes-out",
    "packets_in": "aws:all-packets-in",
    "packets_out": "aws:all-packets-out",
}
_CUSTOM_VALUE_KEYS = {
    "number": "number",
    "number_list": "numbers",
    "string_list": "strings",
    "ip_list": "cidrs",
}

Datapoint = tuple[str, dict[str, Any], dict[str, Any] | None]


def decode_report(
    doc: dict[str, Any], ctx: RecordContext, *, thing: str, received_at: object
) -> None:
    """One device's report. ``thing`` (the topic segment) and ``received_at`` come from the
    forwarding rule, never from the report: a device cannot speak for another thing."""
    report = _long_names(doc)
    custom = _validated_custom_metrics(report, ctx)
    if custom is None:
        return
    metrics = report.get("metrics") or {}
    excess = _over_caps(metrics, custom)
    if excess:
        counts = ", ".join(f"{path} {count}" for path, count in excess["counts"].items())
        reason = (
            f"{KIND}: over the fan-out caps ({MAX_CUSTOM_METRICS} custom metrics, "
            f"{MAX_LIST_ENTRIES} list entries): {counts}; the excess is this event's payload"
        )
        ctx.unparsed("over_limit", reason, excess, kind=KIND)
    # The body holds what Detect's datapoint holds; the constant origin, the report's id and
    # the receive time (_time) live in the envelope, so they are not licensed per event.
    report_id = str(report["header"]["report_id"])
    emit = ctx.emitter(METRIC)
    seconds = epoch_seconds(received_at)
    for name, value, detail in _datapoints(metrics, custom):
        # Small fields first, lists last (context.scalars_first says why).
        event = {"name": name, "thing": thing, "value": value}
        if detail:
            event["detail"] = detail
        fields = {"thing": thing, "metric": name, "origin": ORIGIN, "report_id": report_id}
        emit(event, when=received_at, seconds=seconds, host=thing, fields=fields)


def _over_caps(metrics: dict[str, Any], custom: dict[str, Any]) -> dict[str, Any]:
    """Cut ``metrics`` and ``custom`` (in place) to the caps; return what was cut, by path,
    with ``counts`` (how many entries each path held). A list keeps counting in full: a
    ``total`` the device left out becomes the length before the cut."""
    cut: dict[str, Any] = {}
    counts: dict[str, int] = {}

    def cap(holder: object, key: str, path: str, total_key: str | None = "total") -> None:
        entries = holder.get(key) if isinstance(holder, dict) else None
        if not isinstance(entries, list) or len(entries) <= MAX_LIST_ENTRIES:
            return
        assert isinstance(holder, dict)  # noqa: S101 - narrowed by the line above
        if total_key:
            holder.setdefault(total_key, len(entries))
        cut[path], holder[key] = entries[MAX_LIST_ENTRIES:], entries[:MAX_LIST_ENTRIES]
        counts[path] = len(entries)

    for protocol in ("tcp", "udp"):
        name = f"listening_{protocol}_ports"
        cap(metrics.get(name), "ports", f"metrics.{name}.ports")
    established = (metrics.get("tcp_connections") or {}).get("established_connections")
    cap(established, "connections", "metrics.tcp_connections.established_connections.connections")
    for name, (value,) in custom.items():
        ((kind, _),) = value.items()
        cap(value, kind, f"custom_metrics.{name}.{kind}", total_key=None)
    if len(custom) > MAX_CUSTOM_METRICS:
        names = list(custom)
        cut["custom_metrics"] = {name: custom.pop(name) for name in names[MAX_CUSTOM_METRICS:]}
        counts["custom_metrics"] = len(names)
    if cut:
        cut["counts"] = counts
    return cut


def _long_names(doc: dict[str, Any]) -> dict[str, Any]:
    """The report with short keys expanded; custom metric names are left as the device chose."""
    expanded: dict[str, Any] = {}
    for key, value in doc.items():
        long_key = _LONG_NAMES.get(key, key)
        if long_key == "custom_metrics":
            expanded[long_key] = value
        elif isinstance(value, dict):
            expanded[long_key] = _long_names(value)
        elif isinstance(value, list):
            expanded[long_key] = [_long_names(v) if isinstance(v, dict) else v for v in value]
        else:
            expanded[long_key] = value
    return expanded


def _validated_custom_metrics(report: dict[str, Any], ctx: RecordContext) -> dict[str, Any] | None:
    """Valid custom metrics; a bad one is reported alone. None when the report is invalid."""
    custom = report.get("custom_metrics")
    error = checker(KIND)(report)
    if error is None:
        return custom if isinstance(custom, dict) else {}
    if isinstance(custom, dict):
        # Re-check without the custom metrics: if the rest is fine, only some of them are bad.
        error = checker(KIND, "report")({**report, "custom_metrics": {}})
    if error is not None or not isinstance(custom, dict):
        ctx.unparsed("schema_violation", f"{KIND}: {error}", kind=KIND)
        return None
    check = checker(KIND, "customMetric")
    good = {}
    for name, value in custom.items():
        entry = {"name": name, "value": value}
        error = check(entry)
        if error is None:
            good[name] = value
        else:
            reason = f"{KIND}: custom metric {name[:128]!r}: {error}"
            ctx.unparsed("schema_violation", reason, entry, kind=KIND)
    return good


def _datapoints(metrics: dict[str, Any], custom: dict[str, Any]) -> Iterator[Datapoint]:
    for protocol in ("tcp", "udp"):
        listening = metrics.get(f"listening_{protocol}_ports")
        if listening is not None:
            yield from _listening_ports(protocol, listening)
    established = (metrics.get("tcp_connections") or {}).get("established_connections")
    if established is not None:
        yield from _established_connections(established)
    for key, name in _NETWORK_STATS.items():
        count = (metrics.get("network_stats") or {}).get(key)
        if count is not None:
            yield name, {"count": count}, None
    for name, (value,) in custom.items():
        ((kind, number_or_list),) = value.items()
        yield name, {_CUSTOM_VALUE_KEYS[kind]: number_or_list}, None


def _listening_ports(protocol: str, listening: dict[str, Any]) -> Iterator[Datapoint]:
    entries = listening.get("ports")
    ports = None if entries is None else sorted({entry["port"] for entry in entries})
    if entries is not None:
        detail = {"ports": entries} if any("interface" in e for e in entries) else None
        yield f"aws:listening-{protocol}-ports", {"ports": ports}, detail
    total = listening.get("total", None if ports is None else len(ports))
    if total is not None:
        yield f"aws:num-listening-{protocol}-ports", {"count": total}, None


def _established_connections(established: dict[str, Any]) -> Iterator[Datapoint]:
    connections = established.get("connections")
    if connections is not None:
        cidrs = list(dict.fromkeys(filter(None, map(_remote_cidr, connections))))
        yield "aws:destination-ip-addresses", {"cidrs": cidrs}, {"connections": connections}
    total = established.get("total", len(connections) if connections is not None else None)
    if total is not None:
        yield "aws:num-established-tcp-connections", {"count": total}, None


def _remote_cidr(connection: dict[str, Any]) -> str | None:
    """'ip:port', '[ipv6]:port' or a bare IPv4 to a host CIDR like Detect's; None if unreadable."""
    address: str = connection["remote_addr"]
    if ":" not in address:
        host = address  # a bare address, no port
    else:
        match = _BRACKETED.fullmatch(address) or _WITH_PORT.fullmatch(address)
        if match is None:
            return None
        host = match["host"]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return f"{ip}/{ip.max_prefixlen}"
