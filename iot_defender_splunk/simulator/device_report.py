"""Device-side metrics reports (Device Defender's document, long key names), as the stack's
device-report rule forwards them from ``$aws/things/<thing>/defender/metrics/json``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from iot_defender_splunk.simulator.delivery import Message, rule_record
from iot_defender_splunk.simulator.stamps import compact, epoch_ms

# A custom metric as the report holds it: a one-element list of {"number": ...}, ...
CustomValue = list[dict[str, Any]]


@dataclass(frozen=True)
class Connection:
    """One established TCP connection of a report."""

    remote_addr: str  # "ip:port", "[ipv6]:port"
    local_port: int
    local_interface: str = "eth0"

    def entry(self) -> dict[str, Any]:
        return {
            "remote_addr": self.remote_addr,
            "local_port": self.local_port,
            "local_interface": self.local_interface,
        }


def number(value: float) -> CustomValue:
    return [{"number": value}]


def numbers(values: Sequence[float]) -> CustomValue:
    return [{"number_list": list(values)}]


def strings(values: Sequence[str]) -> CustomValue:
    return [{"string_list": list(values)}]


def addresses(values: Sequence[str]) -> CustomValue:
    return [{"ip_list": list(values)}]


def _ports(ports: Sequence[int], interfaces: Mapping[int, str]) -> dict[str, Any]:
    entries = [{"port": port, "interface": interfaces.get(port, "eth0")} for port in ports]
    return {"ports": entries, "total": len(entries)}


def report(
    report_id: int,
    *,
    tcp: Sequence[int] | None = None,
    udp: Sequence[int] | None = None,
    connections: Sequence[Connection] | None = None,
    network: Mapping[str, int] | None = None,
    custom: Mapping[str, CustomValue] | None = None,
    interfaces: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    """A metrics report; ports listen on eth0 unless ``interfaces`` names another for a port.

    ``network`` holds ``bytes_in``, ``bytes_out``, ``packets_in``, ``packets_out`` deltas.
    """
    metrics: dict[str, Any] = {}
    where = interfaces or {}
    if connections is not None:
        metrics["tcp_connections"] = {
            "established_connections": {
                "connections": [connection.entry() for connection in connections],
                "total": len(connections),
            }
        }
    if tcp is not None:
        metrics["listening_tcp_ports"] = _ports(tcp, where)
    if udp is not None:
        metrics["listening_udp_ports"] = _ports(udp, where)
    if network is not None:
        metrics["network_stats"] = dict(network)
    document: dict[str, Any] = {"header": {"report_id": report_id, "version": "1.0"}}
    if metrics:
        document["metrics"] = metrics
    if custom:
        document["custom_metrics"] = dict(custom)
    return document


def forwarded(document: dict[str, Any], thing: str, received: float) -> Message:
    """A report as the device-report rule forwards it: the topic's thing name and the time the
    broker received it (``timestamp()``, epoch ms) beside the device's own bytes."""
    data = rule_record(
        "device-report", compact(document), thing_name=thing, received_at=epoch_ms(received)
    )
    return Message("device_report", data)
