"""iot_defender_splunk.capacity and `iot-defender-splunk capacity`: hand-checked arithmetic,
quota exceedance, option validation and the model's invariants."""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iot_defender_splunk import capacity, cli
from iot_defender_splunk.capacity import DAY, MB, MIB, Buffering, CapacityError, Fleet
from iot_defender_splunk.commands import capacity as capacity_command

DETECT_FLEET = Fleet(devices=10_000, report_interval=300, detect=True)


def _flow(sizing: capacity.Sizing, kind: str) -> capacity.Flow:
    (flow,) = [flow for flow in sizing.flows if flow.kind == kind]
    return flow


def _usage(sizing: capacity.Sizing, name: str) -> capacity.Usage:
    (usage,) = [usage for usage in sizing.quota_usage if usage.name == name]
    return usage


def test_ten_thousand_devices_at_300_s_with_detect_send_exactly_these_messages() -> None:
    sizing = capacity.size(DETECT_FLEET)
    # 10 device-side metrics per 300 s report plus 8 cloud-side per 5-minute period, per device.
    assert _flow(sizing, "detect_export").messages_per_s == pytest.approx(600.0)
    assert _flow(sizing, "device_report").messages_per_s == pytest.approx(10_000 / 300)
    assert _flow(sizing, "lifecycle").messages_per_s == pytest.approx(20_000 / DAY)
    # The inventory puts one record per thing, in full PutRecordBatch calls of 500.
    inventory = _flow(sizing, "thing")
    assert inventory.records_per_s == pytest.approx(10_000 / 3600)
    assert inventory.requests_per_s == pytest.approx(20 / 3600)
    expected_requests = 600 + 10_000 / 300 + 20_000 / DAY + 1 / DAY + 50 / 60 + 20 / 3600
    assert _usage(sizing, "requests/s").needed == pytest.approx(expected_requests)
    assert not sizing.over_quota


def test_without_detect_the_device_reports_are_the_rule_traffic() -> None:
    sizing = capacity.size(Fleet(devices=10_000))
    assert {flow.kind for flow in sizing.flows} == {
        "device_report",
        "lifecycle",
        "audit_notification",
        "metric_stream",
        "thing",
    }
    assert _usage(sizing, "requests/s").needed == pytest.approx(
        10_000 / 300 + 20_000 / DAY + 1 / DAY + 50 / 60 + 20 / 3600
    )


def test_bytes_and_events_per_message_are_the_measured_ones() -> None:
    figures = capacity.figures()["messages"]["device_report"]
    sizing = capacity.size(Fleet(devices=3_000, lifecycle_per_device_day=0, metric_stream_series=0))
    reports = _flow(sizing, "device_report")
    assert reports.bytes_per_s == pytest.approx(10 * figures["record_bytes"])
    assert reports.hec_bytes_per_s == pytest.approx(10 * figures["hec_bytes"])
    assert reports.events_per_s == pytest.approx(
        {st: 10 * n for st, n in figures["events"].items()}
    )


def test_detect_bytes_are_one_envelope_per_message_plus_the_datapoints() -> None:
    export = capacity.figures()["messages"]["detect_export"]
    per_datapoint = (export["record_bytes"] - export["empty_record_bytes"]) / export["datapoints"]
    one = _flow(capacity.size(DETECT_FLEET), "detect_export")
    batched = _flow(
        capacity.size(dataclasses.replace(DETECT_FLEET, detect_datapoints_per_message=18)),
        "detect_export",
    )
    assert batched.messages_per_s == pytest.approx(one.messages_per_s / 18)
    assert one.bytes_per_s - batched.bytes_per_s == pytest.approx(
        (one.messages_per_s - batched.messages_per_s) * export["empty_record_bytes"]
    )
    assert batched.bytes_per_s == pytest.approx(
        batched.messages_per_s * export["empty_record_bytes"] + 600 * per_datapoint
    )
    assert batched.events_per_s == pytest.approx(one.events_per_s)


def test_the_same_fleet_fits_the_high_region_class_but_not_the_standard_one() -> None:
    fleet = Fleet(devices=30_000, detect=True)
    high = capacity.size(dataclasses.replace(fleet, region_class="high"))
    standard = capacity.size(fleet)
    assert not high.over_quota
    assert [usage.name for usage in standard.over_quota] == ["requests/s"]
    assert _usage(standard, "requests/s").share > 1 > _usage(high, "requests/s").share


def test_batched_detect_exports_exceed_the_throughput_quota_alone() -> None:
    fleet = Fleet(devices=200_000, detect=True, detect_datapoints_per_message=500)
    sizing = capacity.size(fleet)
    assert _usage(sizing, "MiB/s").needed == pytest.approx(
        sum(flow.bytes_per_s for flow in sizing.flows) / MIB
    )
    assert [usage.name for usage in sizing.over_quota] == ["MiB/s"]


def test_iot_logs_count_one_record_per_log_event() -> None:
    fleet = Fleet(devices=1_000, iot_log_events_per_device_hour=20_000, region_class="high")
    logs = _flow(capacity.size(fleet), "iot_log")
    assert logs.records_per_s == pytest.approx(1_000 * 20_000 / 3600)
    assert logs.requests_per_s == logs.records_per_s


def test_a_small_fleet_invokes_the_transform_once_per_buffer_interval() -> None:
    sizing = capacity.size(Fleet(devices=10))
    assert sizing.transform_invocations_per_s == pytest.approx(1 / 60)
    assert sizing.hec_requests_per_s == pytest.approx(1 / 60)
    assert sizing.mb_per_invocation == pytest.approx(
        sum(flow.bytes_per_s for flow in sizing.flows) * 60 / MB
    )


def test_a_large_fleet_fills_the_buffer_before_the_interval_ends() -> None:
    sizing = capacity.size(DETECT_FLEET, Buffering(transform_mb=0.5))
    bytes_in = sum(flow.bytes_per_s for flow in sizing.flows)
    assert sizing.transform_invocations_per_s == pytest.approx(bytes_in / (0.5 * MB))
    assert sizing.mb_per_invocation == pytest.approx(0.5)
    timing = capacity.figures()["transform"]["ms_per_mb"]
    weighted = sum(flow.bytes_per_s / bytes_in * timing[flow.kind] for flow in sizing.flows)
    assert sizing.ms_per_invocation == pytest.approx(0.5 * weighted)
    assert sizing.concurrency == pytest.approx(
        sizing.transform_invocations_per_s * sizing.ms_per_invocation / 1000
    )


def test_device_reports_fit_the_lambda_response_at_the_default_buffer_not_at_1_mb() -> None:
    fleet = Fleet(devices=100_000, region_class="high")
    assert not capacity.size(fleet).response_over_limit
    assert capacity.size(fleet, Buffering(transform_mb=1)).response_over_limit


def test_license_is_the_raw_bytes_of_every_event_per_day() -> None:
    sizing = capacity.size(DETECT_FLEET)
    raw = sum(sum(flow.raw_bytes_per_s.values()) for flow in sizing.flows)
    assert sum(sizing.license_gb_per_day.values()) == pytest.approx(raw * DAY / 1e9)
    assert sizing.events_per_day["aws:iot:defender:metric"] == pytest.approx(
        (600 + 10 * 10_000 / 300) * DAY
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"report_interval": 299}, "--report-interval must be at least 300 s"),
        ({"devices": 0}, "--devices must be at least 1"),
        ({"detect_datapoints_per_message": 0}, "--detect-datapoints-per-message must be 1 to"),
        ({"detect_datapoints_per_message": 5_000}, "do not fit one 128 KB MQTT message"),
        ({"audit_frequency": "HOURLY"}, "--audit must be one of"),
        ({"region_class": "eu-west-1"}, "--region-class must be one of"),
        ({"inventory_interval": 30}, "--inventory-interval must be at least 60 s"),
    ],
)
def test_impossible_fleets_are_refused_with_the_reason(change: dict[str, Any], message: str):
    with pytest.raises(CapacityError, match=message):
        capacity.size(dataclasses.replace(DETECT_FLEET, **change))


@pytest.mark.parametrize(
    ("buffering", "message"),
    [
        (Buffering(transform_mb=0.1), "--transform-buffer-mb must be 0.2 to 3"),
        (Buffering(transform_mb=4), "--transform-buffer-mb must be 0.2 to 3"),
        (Buffering(transform_interval=901), "--transform-buffer-interval must be 1 to 900 s"),
        (Buffering(splunk_interval=61), "--splunk-buffer-interval must be 1 to 60 s"),
    ],
)
def test_impossible_buffering_is_refused(buffering: Buffering, message: str) -> None:
    with pytest.raises(CapacityError, match=message):
        capacity.size(DETECT_FLEET, buffering)


def test_the_largest_export_fits_one_mqtt_message() -> None:
    export = capacity.figures()["messages"]["detect_export"]
    largest = capacity.max_detect_datapoints_per_message()
    per_datapoint = (export["record_bytes"] - export["empty_record_bytes"]) / export["datapoints"]
    assert export["empty_record_bytes"] + largest * per_datapoint <= 128 * 1024
    assert export["empty_record_bytes"] + (largest + 1) * per_datapoint > 128 * 1024


def rates(largest: float) -> st.SearchStrategy[float]:
    """Zero (the source is off) or a rate a fleet could have."""
    return st.one_of(st.just(0.0), st.floats(1e-3, largest))


fleets = st.builds(
    Fleet,
    devices=st.integers(1, 2_000_000),
    report_interval=st.floats(300, 86_400),
    device_reports=st.booleans(),
    detect=st.booleans(),
    detect_datapoints_per_message=st.integers(1, 500),
    violations_per_device_day=rates(10),
    lifecycle_per_device_day=rates(100),
    iot_log_events_per_device_hour=rates(100),
    metric_stream_series=st.integers(0, 1000),
    audit_frequency=st.sampled_from(sorted(capacity.AUDIT_RUNS_PER_DAY)),
    audit_findings_per_run=st.integers(0, 10_000),
    inventory_interval=st.one_of(st.none(), st.floats(60, 86_400)),
    region_class=st.sampled_from(sorted(capacity.QUOTAS)),
)


@pytest.mark.property
@given(fleet=fleets)
def test_every_record_needs_a_request_and_no_request_holds_more_than_500(fleet: Fleet) -> None:
    for flow in capacity.size(fleet).flows:
        assert flow.records_per_s / 500 <= flow.requests_per_s * (1 + 1e-9)
        assert flow.requests_per_s <= flow.records_per_s * (1 + 1e-9)
        assert flow.bytes_per_s > 0


@pytest.mark.property
@given(fleet=fleets)
def test_license_and_events_do_not_depend_on_region_or_batching(fleet: Fleet) -> None:
    sizing = capacity.size(fleet)
    other = capacity.size(
        dataclasses.replace(fleet, region_class="high", detect_datapoints_per_message=1),
        Buffering(transform_mb=3, transform_interval=900),
    )
    assert other.license_gb_per_day == pytest.approx(sizing.license_gb_per_day)
    assert other.hec_events_per_s == pytest.approx(sizing.hec_events_per_s)


@pytest.mark.property
@given(fleet=fleets)
def test_twice_the_devices_send_twice_the_device_traffic(fleet: Fleet) -> None:
    doubled = dataclasses.replace(fleet, devices=fleet.devices * 2)
    per_device = {"detect_export", "violation", "device_report", "lifecycle", "iot_log"}
    for one, two in zip(capacity.size(fleet).flows, capacity.size(doubled).flows, strict=True):
        if one.kind in per_device:
            assert two.records_per_s == pytest.approx(2 * one.records_per_s)
            assert two.raw_bytes_per_s == pytest.approx(
                {st: 2 * b for st, b in one.raw_bytes_per_s.items()}
            )


@pytest.mark.property
@given(fleet=fleets)
def test_quota_shares_are_needed_over_allowed(fleet: Fleet) -> None:
    sizing = capacity.size(fleet)
    quota = capacity.QUOTAS[fleet.region_class]
    allowed = [quota.records_per_s, quota.requests_per_s, quota.mib_per_s]
    for usage, limit in zip(sizing.quota_usage, allowed, strict=True):
        assert usage.quota == limit
        assert usage.over == (usage.needed > limit)
        assert math.isfinite(usage.share)


# --- the command -------------------------------------------------------------------------------


def test_the_command_prints_every_table_and_exits_0_when_the_fleet_fits(capsys) -> None:
    assert cli.main(["capacity", "--devices", "10000", "--detect"]) == 0
    out = capsys.readouterr().out
    for title in (
        "Into the delivery stream",
        "Firehose Direct PUT quota (standard Region class)",
        "Transform Lambda and Splunk HEC",
        "Splunk license",
        "Assumptions:",
    ):
        assert title in out
    assert "OVER" not in out


def test_the_command_flags_the_exceeded_quota_and_exits_1(capsys) -> None:
    assert cli.main(["capacity", "--devices", "30000", "--detect"]) == 1
    out = capsys.readouterr().out
    assert "OVER" in out
    assert "Over the Direct PUT quota (requests/s)" in out


def test_an_impossible_interval_is_one_line_and_exit_1(capsys) -> None:
    assert cli.main(["capacity", "--devices", "10", "--report-interval", "60"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "iot-defender-splunk capacity: error: --report-interval must be at least 300 s: "
        "Device Defender throttles device metric reports sent more often"
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["--devices", "0"],
        ["--devices", "ten"],
        ["--devices", "10", "--lifecycle-per-device-day", "-1"],
        ["--devices", "10", "--iot-log-events-per-device-hour", "nan"],
        ["--devices", "10", "--iot-log-events-per-device-hour", "inf"],
        ["--devices", "10", "--region-class", "eu-west-1"],
        ["--devices", "10", "--audit", "hourly"],
        [],
    ],
)
def test_malformed_options_are_usage_errors(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["capacity", *argv])
    assert exit_info.value.code == 2
    assert "usage: iot-defender-splunk capacity" in capsys.readouterr().err


def test_help_names_the_quota_and_the_measured_figures(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["capacity", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "Direct PUT quotas" in out
    assert "--detect-datapoints-per-message" in out


def test_inventory_interval_zero_turns_the_inventory_off(capsys) -> None:
    assert cli.main(["capacity", "--devices", "10", "--inventory-interval", "0"]) == 0
    assert "Thing inventory" not in capsys.readouterr().out


def test_the_commands_defaults_are_the_models() -> None:
    """One source of defaults: the options say nothing the model (the stack's) does not."""
    parser = argparse.ArgumentParser()
    capacity_command.add_arguments(parser)
    args = parser.parse_args(["--devices", "1"])
    assert capacity_command.fleet_of(args) == Fleet(devices=1)
    assert capacity_command.buffering_of(args) == Buffering()
