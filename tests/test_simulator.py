"""The fleet simulator end to end: deterministic, realistic enough that the incidents (and only
they) meet the detections' rules, the same datapoints with Detect or without it."""

from __future__ import annotations

import json
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from appbuild.build_app import DETECTIONS_DIR
from iot_defender_splunk.simulator import (
    Simulation,
    run_transform,
    simulate_fleet,
    stream_fleet,
    stream_transform,
)
from iot_defender_splunk.simulator.delivery import Batch, Buffering, firehose_batches
from iot_defender_splunk.story import rules as oracle
from transform.sourcetypes import METRIC, UNPARSED

END = 1_795_399_200.0  # 2026-11-23T02:00:00Z
# An end on the hour, and one that puts the 5-minute buckets and minutes anywhere.
ENDS = [END, END + 1_337.4]
FLOORS = oracle.OUTBOUND_FLOORS


@cache
def simulated(
    detect: bool, end: float = END, devices: int = 20
) -> tuple[Simulation, tuple[Any, ...]]:
    simulation = simulate_fleet(devices=devices, hours=6, seed=7, end=end, detect=detect)
    events = tuple(json.loads(line) for line in run_transform(simulation.batches).events)
    return simulation, events


def _schedule(stem: str) -> dict[str, Any]:
    spec = yaml.safe_load((DETECTIONS_DIR / f"{stem}.yml").read_text(encoding="utf-8"))
    schedule: dict[str, Any] = spec["schedule"]
    return schedule


def _window(stem: str, simulation: Simulation) -> oracle.Window:
    return oracle.schedule_window(_schedule(stem), simulation.end)


def _device(simulation: Simulation, incident: str) -> str:
    (name,) = next(i for i in simulation.incidents if i.id == incident).device_names
    return name


def test_the_same_seed_and_end_give_the_same_messages() -> None:
    first = simulate_fleet(devices=6, hours=2, seed=11, end=END)
    again = simulate_fleet(devices=6, hours=2, seed=11, end=END)
    other = simulate_fleet(devices=6, hours=2, seed=12, end=END)
    assert first.messages == again.messages
    assert [b.event for b in first.batches] == [b.event for b in again.batches]
    assert first.messages != other.messages


@pytest.mark.parametrize("detect", [True, False], ids=["detect", "device-reports"])
def test_every_record_is_transformed_into_events_within_the_simulated_hours(detect: bool) -> None:
    simulation, events = simulated(detect)
    run = run_transform(simulation.batches)
    assert run.results() == {"Ok": len(simulation.messages)}
    assert sum(o.records for o in run.outcomes) == len(simulation.messages)
    assert not [e for e in events if e["sourcetype"] == UNPARSED]
    assert all(e["index"] == "iot_security" for e in events)
    assert min(e["time"] for e in events) >= simulation.start
    assert max(e["time"] for e in events) < simulation.end


def _datapoints(events: tuple[Any, ...], names: set[str]) -> set[tuple[Any, ...]]:
    return {
        (e["time"], e["host"], e["event"]["name"], json.dumps(e["event"]["value"], sort_keys=True))
        for e in events
        if e["sourcetype"] == METRIC and e["event"]["name"] in names
    }


DEVICE_SIDE = {
    "aws:listening-tcp-ports",
    "aws:num-listening-tcp-ports",
    "aws:listening-udp-ports",
    "aws:num-listening-udp-ports",
    "aws:destination-ip-addresses",
    "aws:num-established-tcp-connections",
    "aws:all-bytes-in",
    "aws:all-bytes-out",
    "aws:all-packets-in",
    "aws:all-packets-out",
}


def test_detect_exports_and_device_reports_give_the_same_device_side_datapoints() -> None:
    _, exported = simulated(True)
    _, reported = simulated(False)
    from_detect = _datapoints(exported, DEVICE_SIDE)
    assert from_detect == _datapoints(reported, DEVICE_SIDE)
    assert len(from_detect) == 20 * 6 * 12 * len(DEVICE_SIDE)
    origins = {e["fields"]["origin"] for e in exported if e["sourcetype"] == METRIC}
    assert origins == {"detect-export"}
    assert {e["fields"]["origin"] for e in reported if e["sourcetype"] == METRIC} == {
        "device-report"
    }


def test_only_detect_sends_cloud_side_metrics_and_alarms() -> None:
    _, exported = simulated(True)
    _, reported = simulated(False)
    names = {e["event"]["name"] for e in exported if e["sourcetype"] == METRIC}
    assert names - DEVICE_SIDE == {
        "aws:num-messages-sent",
        "aws:num-messages-received",
        "aws:message-byte-size",
        "aws:num-authorization-failures",
        "aws:num-connection-attempts",
        "aws:num-disconnects",
        "aws:source-ip-address",
    }
    assert {e["event"]["name"] for e in reported if e["sourcetype"] == METRIC} == DEVICE_SIDE
    alarms = [e for e in exported if e["sourcetype"] == "aws:iot:defender:violation"]
    assert {(e["host"], e["event"]["behavior"]["name"]) for e in alarms} == {
        ("cam-0001", "listening-tcp-allowlist"),
        ("gw-0001", "bytes-out-high"),
    }
    assert not [e for e in reported if e["sourcetype"] == "aws:iot:defender:violation"]


def _cases() -> Iterator[Any]:
    for end in ENDS:
        for detect in (True, False):
            yield pytest.param(detect, end, id=f"{'detect' if detect else 'reports'}-{end:.0f}")


CASES = list(_cases())


@pytest.mark.parametrize(("detect", "end"), CASES)
def test_open_port_incident_alone_listens_on_risky_ports(detect: bool, end: float) -> None:
    simulation, events = simulated(detect, end)
    camera = _device(simulation, "open-port")
    window = _window("risky_port_listening", simulation)
    assert oracle.risky_ports(events, window) == {(camera, 21), (camera, 23)}
    counts = oracle.port_count_changes(events, _window("listening_port_count_changed", simulation))
    assert counts == {camera}


@pytest.mark.parametrize(("detect", "end"), CASES)
def test_exfiltration_incident_alone_spikes_outbound_volume(detect: bool, end: float) -> None:
    simulation, events = simulated(detect, end)
    points = oracle.count_datapoints(events, FLOORS)
    window = _window("outbound_volume_spike_vs_device_baseline", simulation)
    assert oracle.volume_spikes(points, window, FLOORS.__getitem__) == {
        _device(simulation, "exfiltration")
    }


@pytest.mark.parametrize(("detect", "end"), CASES)
def test_authentication_storm_alone_bursts_and_surges(detect: bool, end: float) -> None:
    simulation, events = simulated(detect, end)
    window = _window("authentication_error_burst_from_source_ip", simulation)
    assert oracle.authentication_bursts(events, window) == {"192.0.2.250"}
    points = oracle.authentication_error_points(events)
    surge = _window("fleet_wide_authentication_error_surge", simulation)
    assert set(oracle.buckets_above_baseline(points, surge, current=900, floor=50)) == {
        "Connection.AuthNError"
    }


@pytest.mark.parametrize(("detect", "end"), CASES)
def test_cloned_certificate_alone_connects_from_many_addresses_and_flaps(
    detect: bool, end: float
) -> None:
    simulation, events = simulated(detect, end)
    pump = _device(simulation, "cloned-certificate")
    seen = oracle.connections(events)
    most = oracle.most_addresses_in_an_hour(
        seen, _window("client_id_connecting_from_many_source_ips", simulation)
    )
    assert {client for client, n in most.items() if n >= 3} == {pump}
    assert most[pump] == 4
    presence = oracle.lifecycle_presence(events)
    flapping = _window("connection_flapping", simulation)
    assert set(oracle.buckets_above_baseline(presence, flapping, current=3600, floor=10)) == {pump}


def test_audit_incident_finds_the_pumps_certificate_shared_and_logging_disabled() -> None:
    simulation, events = simulated(True)
    pump = next(
        d for d in simulation.fleet.devices if d.name == _device(simulation, "audit-findings")
    )
    findings = [e["event"] for e in events if e["sourcetype"] == "aws:iot:defender:audit:finding"]
    assert {(f["check_name"], f.get("resource_id")) for f in findings} == {
        ("DEVICE_CERTIFICATE_SHARED_CHECK", pump.certificate),
        ("LOGGING_DISABLED_CHECK", "123456789012"),
    }
    lifecycle_principals = {
        e["event"]["principalIdentifier"]
        for e in events
        if e["sourcetype"] == "aws:iot:lifecycle" and e["host"] == pump.name
    }
    assert lifecycle_principals == {pump.certificate}
    checks = {
        e["event"]["check_name"]: e["event"]["checkRunStatus"]
        for e in events
        if e["sourcetype"] == "aws:iot:defender:audit:check"
    }
    assert checks["DEVICE_CERTIFICATE_SHARED_CHECK"] == "COMPLETED_NON_COMPLIANT"
    assert checks["CONFLICTING_CLIENT_IDS_CHECK"] == "COMPLETED_COMPLIANT"


def test_a_response_over_the_lambda_limit_is_reput_and_comes_back() -> None:
    simulation = simulate_fleet(devices=400, hours=0.5, seed=3, end=END, detect=False)
    reports = [r for r in simulation.messages if r.kind == "device_report"]
    batch = firehose_batches(reports, Buffering(size_mb=3, interval_seconds=900))[0]
    run = run_transform([batch])
    assert run.outcomes[0].results["Dropped"] > 0, "some records were re-put"
    assert len(run.outcomes) > 1, "and came back in later invocations"
    assert run.results()["ProcessingFailed"] == 0
    metrics = [line for line in run.events if b'"aws:iot:defender:metric"' in line]
    assert len(metrics) == len(batch.records) * len(DEVICE_SIDE)


# --- the streaming form: the same records, batches and events, a batch at a time ------------


@settings(max_examples=30)  # each example simulates a whole fleet twice
@given(
    devices=st.integers(min_value=1, max_value=8),
    hours=st.floats(min_value=0.02, max_value=4),
    seed=st.integers(min_value=0, max_value=2**32),
    end_offset=st.floats(min_value=0, max_value=86_400),
    detect=st.booleans(),
)
def test_the_stream_builds_the_simulations_records_and_batches_in_its_order(
    devices: int, hours: float, seed: int, end_offset: float, detect: bool
) -> None:
    end = END + end_offset
    simulation = simulate_fleet(devices=devices, hours=hours, seed=seed, end=end, detect=detect)
    stream = stream_fleet(devices=devices, hours=hours, seed=seed, end=end, detect=detect)
    assert tuple(stream.records()) == simulation.messages
    assert [b.event for b in stream.batches()] == [b.event for b in simulation.batches]
    assert (stream.start, stream.end, stream.incidents) == (
        simulation.start,
        simulation.end,
        simulation.incidents,
    )


@pytest.mark.parametrize("detect", [True, False], ids=["detect", "device-reports"])
def test_streamed_transform_gives_the_list_runs_events_and_outcomes(detect: bool) -> None:
    simulation, _ = simulated(detect)
    listed = run_transform(simulation.batches)
    stream = stream_fleet(devices=20, hours=6, seed=7, end=END, detect=detect)
    invocations = list(stream_transform(stream.batches()))
    assert [event for i in invocations for event in i.events] == listed.events
    assert [i.outcome for i in invocations] == listed.outcomes


def test_streamed_reputs_come_back_after_the_last_batch_as_in_the_list_run() -> None:
    # Both forms buffer re-put records again after the last batch, so even the order agrees.
    simulation = simulate_fleet(devices=400, hours=0.5, seed=3, end=END, detect=False)
    reports = [r for r in simulation.messages if r.kind == "device_report"]
    batches = firehose_batches(reports, Buffering(size_mb=3, interval_seconds=900))[:1]
    listed = run_transform(batches)
    invocations = list(stream_transform(iter(batches)))
    assert len(invocations) > 1, "re-put records came back"
    assert [i.outcome for i in invocations] == listed.outcomes
    assert [event for i in invocations for event in i.events] == listed.events
    assert {r.kind for i in invocations[1:] for r in i.batch.records} == {"reingested"}


def test_each_invocation_is_handed_on_before_the_next_batch_is_taken() -> None:
    taken: list[int] = []
    stream = stream_fleet(devices=3, hours=1, seed=3, end=END)

    def watched() -> Iterator[Batch]:
        for number, batch in enumerate(stream.batches()):
            taken.append(number)
            yield batch

    invocations = stream_transform(watched())
    for number, invocation in enumerate(invocations):
        assert taken[-1] == number, "no batch is taken ahead of its invocation"
        assert invocation.batch.records
    assert len(taken) > 10


def test_a_consumer_writes_to_standard_output_between_invocations(
    capsys: pytest.CaptureFixture[str],
) -> None:
    batches = stream_fleet(devices=2, hours=0.5, seed=3, end=END).batches()
    for invocation in stream_transform(batches):
        sys.stdout.write(f"{invocation.outcome.events} events\n")
    out = capsys.readouterr().out.splitlines()
    assert out, "the consumer's lines reach standard output"
    assert all(line.endswith(" events") for line in out), "the Lambda's own output does not"
    assert len(out) > 1


def _peak_bytes(run: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_streams_memory_does_not_grow_with_the_hours_simulated() -> None:
    def batches(hours: float) -> Callable[[], object]:
        return lambda: sum(
            1 for _ in stream_fleet(devices=5, hours=hours, seed=3, end=END).batches()
        )

    batches(0.5)()  # imports and caches out of the way
    one_hour, eight_hours = _peak_bytes(batches(1)), _peak_bytes(batches(8))
    # Held in memory, eight hours of batches take five times one hour's peak.
    assert eight_hours < 1.5 * one_hour
