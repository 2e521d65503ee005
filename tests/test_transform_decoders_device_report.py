"""Device metric reports (no Detect) -> the same aws:iot:defender:metric events as Detect."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import (
    ARRIVAL_MS,
    STREAM_ARN,
    fixture_json,
    report_events,
    routed,
    transform,
    transform_fixture,
)
from transform.decoders.device_report import MAX_CUSTOM_METRICS, MAX_LIST_ENTRIES, _remote_cidr


def _by_name(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["event"]["name"]: e for e in events}


def test_long_report_explodes_into_detect_named_metrics() -> None:
    events = _by_name(transform_fixture("device_report", "long_names_full.json"))

    assert events["aws:listening-tcp-ports"]["event"]["value"] == {"ports": [22, 1883, 8443]}
    assert events["aws:num-listening-tcp-ports"]["event"]["value"] == {"count": 3}
    assert events["aws:listening-udp-ports"]["event"]["value"] == {"ports": [123, 5353]}
    assert events["aws:num-listening-udp-ports"]["event"]["value"] == {"count": 2}
    assert events["aws:num-established-tcp-connections"]["event"]["value"] == {"count": 3}
    assert events["aws:destination-ip-addresses"]["event"]["value"] == {
        "cidrs": ["198.51.100.40/32", "10.20.4.17/32", "10.20.4.23/32"]
    }
    assert events["aws:all-bytes-in"]["event"]["value"] == {"count": 482113}
    assert events["aws:all-bytes-out"]["event"]["value"] == {"count": 1288311}
    assert events["aws:all-packets-in"]["event"]["value"] == {"count": 4120}
    assert events["aws:all-packets-out"]["event"]["value"] == {"count": 5377}
    assert events["cpu_usage_pct"]["event"]["value"] == {"number": 23.5}
    assert events["temperature_readings"]["event"]["value"] == {"numbers": [41.2, 41.8, 42.1]}
    assert events["running_processes"]["event"]["value"]["strings"][0] == "sshd"
    assert events["peer_addresses"]["event"]["value"] == {"cidrs": ["10.20.4.17", "10.20.4.23"]}
    assert len(events) == 14


def test_every_event_is_stamped_with_the_rule_receive_time_and_marked_device_report() -> None:
    report = fixture_json("device_report", "long_names_full.json")
    for event in transform_fixture("device_report", "long_names_full.json"):
        assert event["sourcetype"] == "aws:iot:defender:metric"
        assert event["time"] == report["received_at"] / 1000
        assert event["host"] == "gw-berlin-03"
        assert event["source"] == STREAM_ARN
        assert event["event"]["thing"] == "gw-berlin-03"
        # origin, report id and receive time are in the envelope, not licensed in the body
        assert set(event["event"]) <= {"name", "thing", "value", "detail"}
        assert event["fields"] == {
            "thing": "gw-berlin-03",
            "metric": event["event"]["name"],
            "origin": "device-report",
            "report_id": str(report["header"]["report_id"]),
        }


def test_interfaces_and_connection_details_are_kept_in_detail() -> None:
    events = _by_name(transform_fixture("device_report", "long_names_full.json"))

    tcp = events["aws:listening-tcp-ports"]["event"]["detail"]["ports"]
    assert {"port": 8443, "interface": "eth0"} in tcp
    connections = events["aws:destination-ip-addresses"]["event"]["detail"]["connections"]
    assert connections[0]["remote_addr"] == "198.51.100.40:443"


def test_short_key_names_give_exactly_the_same_events_as_long_ones() -> None:
    long_events = transform_fixture("device_report", "long_names_full.json")
    short_events = transform_fixture("device_report", "short_names_full.json")
    assert short_events == long_events


def test_device_report_matches_detect_export_for_the_same_device() -> None:
    """With or without Detect, a search sees the same metric names and values."""
    detect = transform_fixture("metrics_export", "listening_ports_with_risky_ports.json")
    device = transform_fixture("device_report", "telnet_backdoor_opened.json")

    def values(events: list[dict[str, Any]], thing: str) -> dict[str, Any]:
        return {e["event"]["name"]: e["event"]["value"] for e in events if e["host"] == thing}

    from_detect = values(detect, "cam-lobby-2")
    from_device = values(device, "cam-lobby-2")
    shared = set(from_detect) & set(from_device)
    assert {"aws:listening-tcp-ports", "aws:num-listening-tcp-ports"} <= shared
    for name in shared:
        assert from_device[name] == from_detect[name], name


def test_empty_port_lists_report_zero_listening_ports() -> None:
    events = _by_name(transform_fixture("device_report", "empty_port_lists.json"))
    assert events["aws:listening-tcp-ports"]["event"]["value"] == {"ports": []}
    assert events["aws:num-listening-tcp-ports"]["event"]["value"] == {"count": 0}


def test_custom_metrics_only_report() -> None:
    events = transform_fixture("device_report", "custom_metrics_only.json")
    assert events
    assert all(not e["event"]["name"].startswith("aws:") for e in events)


def test_one_bad_custom_metric_is_reported_alone() -> None:
    report = fixture_json("device_report", "custom_metrics_only.json")
    report["custom_metrics"]["aws:listening-tcp-ports"] = [{"number": 1}]

    events = report_events(transform([routed("device_report", report)]))

    unparsed = [e for e in events if e["sourcetype"] == "aws:iot:defender:unparsed"]
    metrics = [e for e in events if e["sourcetype"] == "aws:iot:defender:metric"]
    assert len(unparsed) == 1
    assert "aws:listening-tcp-ports" in unparsed[0]["event"]["reason"]
    assert json.loads(unparsed[0]["event"]["payload"])["name"] == "aws:listening-tcp-ports"
    assert len(metrics) == len(
        fixture_json("device_report", "custom_metrics_only.json")["custom_metrics"]
    )
    assert "aws:listening-tcp-ports" not in {e["event"]["name"] for e in metrics}


def test_an_implausible_receive_time_from_the_rule_gives_the_arrival_time_and_says_so() -> None:
    report = fixture_json("device_report", "metrics_only_minimal.json")
    report["received_at"] = 0

    events = report_events(transform([routed("device_report", report)]))

    assert events
    for event in events:
        assert event["time"] == ARRIVAL_MS / 1000
        assert "before 2015" in event["event"]["time_fallback"]


@pytest.mark.parametrize(
    ("remote_addr", "cidr"),
    [
        ("198.51.100.7:443", "198.51.100.7/32"),
        ("[2001:db8::5]:8883", "2001:db8::5/128"),
        ("2001:db8::5:8883", "2001:db8::5/128"),
        ("10.0.0.1", "10.0.0.1/32"),
        (":443", None),
        ("not-an-ip:80", None),
        ("[::1", None),
        ("[::1]", "::1/128"),
        ("[2001:db8::5]x]:8883", None),
        ("[2001:db8::5]garbage", None),
        ("198.51.100.7:https", None),
        ("198.51.100.7:", None),
    ],
)
def test_remote_address_to_host_cidr(remote_addr: str, cidr: str | None) -> None:
    assert _remote_cidr({"remote_addr": remote_addr}) == cidr


# --- fan-out caps: a report's volume is bounded, and what is past a cap is reported ---------


def _report_with(custom: int = 0, ports: int = 0, connections: int = 0, strings: int = 0) -> bytes:
    metrics: dict[str, Any] = {}
    if ports:
        metrics["listening_tcp_ports"] = {"ports": [{"port": p} for p in range(1, ports + 1)]}
    if connections:
        rows = [{"remote_addr": f"10.0.{n // 250}.{n % 250}:443"} for n in range(connections)]
        metrics["tcp_connections"] = {"established_connections": {"connections": rows}}
    values: dict[str, Any] = {f"m{n:04d}": [{"number": n}] for n in range(custom)}
    if strings:
        values["processes"] = [{"string_list": [f"p{n}" for n in range(strings)]}]
    report: dict[str, Any] = {"header": {"report_id": 1, "version": "1.0"}, "metrics": metrics}
    if values:
        report["custom_metrics"] = values
    return routed(
        "device_report", {**report, "thing_name": "pump-0017", "received_at": 1795166133077}
    )


def test_custom_metrics_past_the_cap_go_whole_into_one_unparsed_event() -> None:
    events = report_events(transform([_report_with(custom=MAX_CUSTOM_METRICS + 7)]))

    metrics = [e for e in events if e["sourcetype"] == "aws:iot:defender:metric"]
    (over,) = [e for e in events if e["sourcetype"] == "aws:iot:defender:unparsed"]
    assert [e["event"]["name"] for e in metrics] == [f"m{n:04d}" for n in range(MAX_CUSTOM_METRICS)]
    assert over["event"]["reason_code"] == "over_limit"
    assert over["event"]["input_kind"] == "device_report"
    assert f"custom_metrics {MAX_CUSTOM_METRICS + 7}" in over["event"]["reason"]
    cut = json.loads(over["event"]["payload"])
    assert list(cut["custom_metrics"]) == [
        f"m{n:04d}" for n in range(MAX_CUSTOM_METRICS, MAX_CUSTOM_METRICS + 7)
    ]


def test_long_lists_are_cut_to_the_cap_and_counts_keep_the_full_length() -> None:
    over = MAX_LIST_ENTRIES + 30
    events = report_events(transform([_report_with(ports=over, connections=over, strings=over)]))

    by_name = _by_name([e for e in events if e["sourcetype"] == "aws:iot:defender:metric"])
    assert len(by_name["aws:listening-tcp-ports"]["event"]["value"]["ports"]) == MAX_LIST_ENTRIES
    assert by_name["aws:num-listening-tcp-ports"]["event"]["value"] == {"count": over}
    assert (
        len(by_name["aws:destination-ip-addresses"]["event"]["value"]["cidrs"]) == MAX_LIST_ENTRIES
    )
    assert by_name["aws:num-established-tcp-connections"]["event"]["value"] == {"count": over}
    assert len(by_name["processes"]["event"]["value"]["strings"]) == MAX_LIST_ENTRIES
    (unparsed,) = [e for e in events if e["sourcetype"] == "aws:iot:defender:unparsed"]
    cut = json.loads(unparsed["event"]["payload"])
    assert set(cut) == {
        "metrics.listening_tcp_ports.ports",
        "metrics.tcp_connections.established_connections.connections",
        "custom_metrics.processes.string_list",
        "counts",
    }
    assert all(len(entries) == 30 for key, entries in cut.items() if key != "counts")


def test_a_report_at_the_mqtt_limit_fans_out_to_a_bounded_multiple_of_itself() -> None:
    """The defect: 128 KB of tiny custom metrics fanned out 19-41x, megabytes per report."""
    record = _report_with(custom=5000)  # published compact, as devices' SDKs write it
    report_size = len(base64.b64decode(json.loads(record)["payload"]))
    assert 120_000 < report_size <= 131_072

    output = transform([record]).outcomes[0].data

    assert len(output) < 4 * report_size


def test_at_the_caps_nothing_is_reported() -> None:
    events = report_events(
        transform([_report_with(custom=MAX_CUSTOM_METRICS, ports=MAX_LIST_ENTRIES)])
    )
    assert all(e["sourcetype"] == "aws:iot:defender:metric" for e in events)


def _short_report_without_totals() -> dict[str, Any]:
    report: dict[str, Any] = fixture_json("device_report", "short_names_full.json")
    del report["met"]["tc"]["ec"]["t"], report["met"]["tp"]["t"], report["met"]["up"]["t"]
    return report


def _counts(events: list[dict[str, Any]]) -> dict[str, int]:
    return {
        e["event"]["name"]: e["event"]["value"]["count"]
        for e in events
        if e["event"]["name"].startswith("aws:num-")
    }


def test_a_report_without_totals_counts_what_its_lists_hold() -> None:
    """``total`` is optional in Device Defender's report: the counts Detect would have are
    derived from the lists, so num-* detections work for such devices too."""
    events = report_events(transform([routed("device_report", _short_report_without_totals())]))

    assert _counts(events) == {
        "aws:num-listening-tcp-ports": 3,
        "aws:num-listening-udp-ports": 2,
        "aws:num-established-tcp-connections": 3,
    }


def test_a_total_larger_than_its_list_is_the_count_the_device_reported() -> None:
    """A device with more connections or ports than fit in its report lists some and counts
    all: the count is its total, and the list is what it sent."""
    report = fixture_json("device_report", "short_names_full.json")
    report["met"]["tc"]["ec"]["t"] = 41
    report["met"]["tp"]["t"] = 9
    report["met"]["up"]["t"] = 7

    events = report_events(transform([routed("device_report", report)]))

    assert _counts(events) == {
        "aws:num-listening-tcp-ports": 9,
        "aws:num-listening-udp-ports": 7,
        "aws:num-established-tcp-connections": 41,
    }
    by_name = _by_name(events)
    assert by_name["aws:listening-tcp-ports"]["event"]["value"] == {"ports": [22, 1883, 8443]}
    assert len(by_name["aws:destination-ip-addresses"]["event"]["value"]["cidrs"]) == 3


def test_custom_metric_names_are_the_devices_even_when_they_spell_a_short_key() -> None:
    """'t' and 'ns' are short keys elsewhere in a report, but a custom metric is named by
    whoever defined it: expanding them would file the metric under another name."""
    report = fixture_json("device_report", "short_names_full.json")
    report["cmet"] = {"t": [{"number": 21.5}], "ns": [{"number_list": [1, 2]}]}

    events = report_events(transform([routed("device_report", report)]))

    custom = {
        e["event"]["name"]: e["event"]["value"]
        for e in events
        if not e["event"]["name"].startswith("aws:")
    }
    assert custom == {"t": {"number": 21.5}, "ns": {"numbers": [1, 2]}}


@pytest.mark.parametrize(
    ("change", "reason_part"),
    [
        (lambda report: report.pop("hed"), "header"),
        (lambda report: report["cmet"].update(bad=[{"number": "hot"}]), "custom metric 'bad'"),
    ],
    ids=["no-header", "custom-metric-of-the-wrong-type"],
)
def test_schema_violations_say_they_come_from_a_device_report(
    change: Callable[[dict[str, Any]], object], reason_part: str
) -> None:
    """input_kind lets a search find every unusable report, whichever part was wrong."""
    report = fixture_json("device_report", "short_names_full.json")
    change(report)

    events = report_events(transform([routed("device_report", report)]))

    (unparsed,) = [e for e in events if e["sourcetype"] == "aws:iot:defender:unparsed"]
    assert unparsed["fields"] == {"reason_code": "schema_violation", "input_kind": "device_report"}
    assert unparsed["event"]["input_kind"] == "device_report"
    assert reason_part in unparsed["event"]["reason"]


def test_a_vendor_extension_in_the_report_changes_none_of_its_metrics() -> None:
    """Agents add their own fields (here a list of plain values); the report's metrics are
    the same as without them."""
    report = fixture_json("device_report", "short_names_full.json")
    plain = report_events(transform([routed("device_report", report)]))
    report["met"]["vendor_ext"] = [1, "eth0", None]

    events = report_events(transform([routed("device_report", report)]))

    assert events == plain


def test_totals_alone_are_counts_and_ports_without_interfaces_carry_no_detail() -> None:
    """A constrained device may send only how many connections it has, and ports without
    the interface they listen on: counts, and a port list with nothing to add in detail."""
    report = {
        "header": {"report_id": 7, "version": "1.0"},
        "metrics": {
            "tcp_connections": {"established_connections": {"total": 4}},
            "listening_udp_ports": {"ports": [{"port": 123}, {"port": 5353}]},
        },
    }
    message = {**report, "thing_name": "pump-0017", "received_at": 1795166133077}

    events = _by_name(report_events(transform([routed("device_report", message)])))

    assert events["aws:num-established-tcp-connections"]["event"]["value"] == {"count": 4}
    assert "aws:destination-ip-addresses" not in events
    assert events["aws:listening-udp-ports"]["event"] == {
        "name": "aws:listening-udp-ports",
        "thing": "pump-0017",
        "value": {"ports": [123, 5353]},
    }


def test_udp_ports_past_the_cap_are_cut_and_the_reason_lists_every_cut_with_its_length() -> None:
    over = MAX_LIST_ENTRIES + 3
    ports = [{"port": p} for p in range(1, over + 1)]
    metrics = {
        "listening_tcp_ports": {"ports": ports},
        "listening_udp_ports": {"ports": ports},
    }
    report = {"header": {"report_id": 1, "version": "1.0"}, "metrics": metrics}
    message = {**report, "thing_name": "pump-0017", "received_at": 1795166133077}

    events = report_events(transform([routed("device_report", message)]))

    (unparsed,) = [e for e in events if e["sourcetype"] == "aws:iot:defender:unparsed"]
    assert (
        f"metrics.listening_tcp_ports.ports {over}, metrics.listening_udp_ports.ports {over};"
        in unparsed["event"]["reason"]
    )
    cut = json.loads(unparsed["event"]["payload"])
    assert cut["counts"] == {
        "metrics.listening_tcp_ports.ports": over,
        "metrics.listening_udp_ports.ports": over,
    }
    metrics_events = [e for e in events if e["sourcetype"] == "aws:iot:defender:metric"]
    udp = _by_name(metrics_events)["aws:listening-udp-ports"]["event"]["value"]["ports"]
    assert len(udp) == MAX_LIST_ENTRIES


def test_a_custom_metric_with_a_name_too_long_is_quoted_to_128_characters() -> None:
    report = fixture_json("device_report", "custom_metrics_only.json")
    name = "m" * 200
    report["custom_metrics"][name] = [{"number": 1}]

    events = report_events(transform([routed("device_report", report)]))

    (unparsed,) = [e for e in events if e["sourcetype"] == "aws:iot:defender:unparsed"]
    assert f"custom metric {'m' * 128!r}:" in unparsed["event"]["reason"]
