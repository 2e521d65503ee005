"""Size a fleet before `sam deploy`: what it sends into the delivery stream, against Firehose's
Direct PUT quotas, and what that costs the transform Lambda, Splunk HEC and the Splunk license.

Byte and event counts come from the real transform on representative messages and the
transform's duration from its measured ms per MB (iot_defender_splunk/data/measured.json,
`make capacity-figures`). Defaults are the stack's own (sam/template.yaml). The assumptions
behind each figure are printed under the tables.

Exit status 0 when the fleet fits; 1 when it needs more than a Firehose quota allows (request
an increase, or split the stream) or when an input is impossible.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from iot_defender_splunk import capacity, cli
from iot_defender_splunk.capacity import Buffering, CapacityError, Fleet, Sizing

NAME = "capacity"
SUMMARY = "size a fleet: Firehose quotas, transform Lambda, HEC requests, Splunk license GB/day"


def _number(kind: Callable[[str], float], minimum: float) -> Callable[[str], float]:
    """An argparse type: a finite number at least ``minimum``."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value >= minimum or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be a finite number >= {minimum:g}")
        return value

    return parse


# The options' defaults are the model's (the stack's parameter defaults): one source.
_FLEET = Fleet(devices=1)
_BUFFERING = Buffering()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    rate = _number(float, 0)
    fleet = parser.add_argument_group("fleet")
    fleet.add_argument("--devices", type=_number(int, 1), required=True, help="things in the fleet")
    fleet.add_argument(
        "--report-interval",
        type=rate,
        default=_FLEET.report_interval,
        metavar="SECONDS",
        help="device metric report interval (at least 300; default %(default)g)",
    )
    fleet.add_argument(
        "--device-reports",
        action=argparse.BooleanOptionalAction,
        default=_FLEET.device_reports,
        help="devices run the Device Defender agent and the stack forwards reports (default on)",
    )
    fleet.add_argument(
        "--detect",
        action=argparse.BooleanOptionalAction,
        default=_FLEET.detect,
        help="Device Defender Detect with the stack's metrics export (default off, like the "
        "stack's EnableDetect)",
    )
    fleet.add_argument(
        "--detect-datapoints-per-message",
        type=_number(int, 1),
        default=_FLEET.detect_datapoints_per_message,
        metavar="N",
        help="datapoints Detect puts in one export message (undocumented; default 1, the most "
        "messages)",
    )
    fleet.add_argument(
        "--violations-per-device-day",
        type=rate,
        default=_FLEET.violations_per_device_day,
        metavar="RATE",
        help="Detect alarms (violation notifications) per device per day, with --detect "
        "(default %(default)g)",
    )
    fleet.add_argument(
        "--lifecycle-per-device-day",
        type=rate,
        default=_FLEET.lifecycle_per_device_day,
        metavar="RATE",
        help="connect and disconnect events per device per day (default %(default)g)",
    )
    fleet.add_argument(
        "--iot-log-events-per-device-hour",
        type=rate,
        default=_FLEET.iot_log_events_per_device_hour,
        metavar="RATE",
        help="AWSIotLogsV2 entries per device per hour at your log level (default %(default)g; "
        "read IncomingLogEvents of the log group)",
    )
    fleet.add_argument(
        "--metric-stream-series",
        type=_number(int, 0),
        default=_FLEET.metric_stream_series,
        metavar="N",
        help="AWS/IoT metric series the metric stream sends, one datapoint a minute each "
        "(0 = metric stream off; default %(default)s)",
    )
    fleet.add_argument(
        "--audit",
        default=_FLEET.audit_frequency,
        type=str.upper,
        choices=list(capacity.AUDIT_RUNS_PER_DAY),
        help="scheduled audit frequency (default %(default)s)",
    )
    fleet.add_argument(
        "--audit-findings-per-run",
        type=_number(int, 0),
        default=_FLEET.audit_findings_per_run,
        metavar="N",
        help="non-compliant findings each audit reports, put by the findings collector "
        "(default %(default)s)",
    )
    fleet.add_argument(
        "--inventory-interval",
        type=rate,
        default=_FLEET.inventory_interval,
        metavar="SECONDS",
        help="inventory export period, 0 = off (default %(default)g, rate(1 hour))",
    )
    fleet.add_argument(
        "--region-class",
        choices=list(capacity.QUOTAS),
        default=_FLEET.region_class,
        help="high: us-east-1, us-west-2, eu-west-1; standard: every other Region (default)",
    )
    stream = parser.add_argument_group("delivery stream (the stack's parameters)")
    stream.add_argument(
        "--transform-buffer-mb",
        type=rate,
        default=_BUFFERING.transform_mb,
        metavar="MB",
        help="TransformBufferSizeMB (default %(default)g)",
    )
    stream.add_argument(
        "--transform-buffer-interval",
        type=rate,
        default=_BUFFERING.transform_interval,
        metavar="SECONDS",
        help="TransformBufferIntervalSeconds (default %(default)g)",
    )
    stream.add_argument(
        "--splunk-buffer-interval",
        type=rate,
        default=_BUFFERING.splunk_interval,
        metavar="SECONDS",
        help="SplunkBufferIntervalSeconds (default %(default)g)",
    )


def fleet_of(args: argparse.Namespace) -> Fleet:
    return Fleet(
        devices=int(args.devices),
        report_interval=args.report_interval,
        device_reports=args.device_reports,
        detect=args.detect,
        detect_datapoints_per_message=int(args.detect_datapoints_per_message),
        violations_per_device_day=args.violations_per_device_day,
        lifecycle_per_device_day=args.lifecycle_per_device_day,
        iot_log_events_per_device_hour=args.iot_log_events_per_device_hour,
        metric_stream_series=int(args.metric_stream_series),
        audit_frequency=args.audit,
        audit_findings_per_run=int(args.audit_findings_per_run),
        inventory_interval=args.inventory_interval or None,
        region_class=args.region_class,
    )


def buffering_of(args: argparse.Namespace) -> Buffering:
    return Buffering(
        transform_mb=args.transform_buffer_mb,
        transform_interval=args.transform_buffer_interval,
        splunk_interval=args.splunk_buffer_interval,
    )


def _rate(value: float) -> str:
    """Readable at every magnitude: a daily audit is 1.2e-05 per second, a fleet thousands."""
    if 0 < abs(value) < 0.01:
        return f"{value:.2g}"
    return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"


def flows_table(sizing: Sizing) -> Table:
    table = Table(title="Into the delivery stream (averages)")
    for column in ("source", "producer", "messages/s", "records/s", "requests/s", "KiB/s"):
        table.add_column(column, justify="left" if column in {"source", "producer"} else "right")
    for flow in sizing.flows:
        table.add_row(
            flow.source,
            flow.producer,
            _rate(flow.messages_per_s),
            _rate(flow.records_per_s),
            _rate(flow.requests_per_s),
            _rate(flow.bytes_per_s / 1024),
        )
    return table


def quota_table(sizing: Sizing, region_class: str) -> Table:
    table = Table(title=f"Firehose Direct PUT quota ({region_class} Region class)")
    for column in ("quota", "needed", "allowed", "used", "headroom"):
        table.add_column(column, justify="left" if column == "quota" else "right")
    for usage in sizing.quota_usage:
        used = f"{usage.share:.1%}"
        table.add_row(
            usage.name,
            _rate(usage.needed),
            _rate(usage.quota),
            f"[bold red]{used} OVER[/]" if usage.over else used,
            _rate(usage.quota - usage.needed),
        )
    return table


def downstream_table(sizing: Sizing) -> Table:
    table = Table(title="Transform Lambda and Splunk HEC")
    table.add_column("figure")
    table.add_column("value", justify="right")
    response = f"{sizing.response_bytes_per_invocation:,.0f}"
    if sizing.response_over_limit:
        response = f"[yellow]{response} (over 6,000,000: the transform re-puts the rest)[/]"
    rows = (
        ("transform invocations/s", _rate(sizing.transform_invocations_per_s)),
        ("input MB per invocation", f"{sizing.mb_per_invocation:.3f}"),
        ("duration per invocation (measured ms)", f"{sizing.ms_per_invocation:,.1f}"),
        ("concurrent invocations (mean)", f"{sizing.concurrency:.2f}"),
        ("response bytes per invocation", response),
        ("HEC requests/s", _rate(sizing.hec_requests_per_s)),
        ("HEC events/s", _rate(sizing.hec_events_per_s)),
        ("HEC MB/s", f"{sizing.hec_mb_per_s:.3f}"),
    )
    for row in rows:
        table.add_row(*row)
    return table


def license_table(sizing: Sizing) -> Table:
    table = Table(title="Splunk license (_raw bytes)")
    table.add_column("sourcetype")
    table.add_column("events/day", justify="right")
    table.add_column("GB/day (10^9 bytes)", justify="right")
    for sourcetype, gb in sizing.license_gb_per_day.items():
        table.add_row(sourcetype, f"{sizing.events_per_day[sourcetype]:,.0f}", f"{gb:.3f}")
    total = sum(sizing.license_gb_per_day.values())
    table.add_row("[bold]total[/]", f"{sum(sizing.events_per_day.values()):,.0f}", f"{total:.3f}")
    return table


def render(sizing: Sizing, fleet: Fleet, console: Console) -> None:
    console.print(flows_table(sizing))
    console.print(quota_table(sizing, fleet.region_class))
    console.print(downstream_table(sizing))
    console.print(license_table(sizing))
    measured = capacity.figures()
    machine = measured["machine"]
    console.print(
        f"Measured on {measured['measured_on']} by `{measured['command']}`: {machine['cpu']}, "
        f"{machine['cpus']} CPUs, Python {machine['python']}."
    )
    console.print("Assumptions:")
    for assumption in capacity.ASSUMPTIONS:
        console.print(f"  - {assumption}")


def run(args: argparse.Namespace) -> int:
    fleet = fleet_of(args)
    try:
        sizing = capacity.size(fleet, buffering_of(args))
    except CapacityError as error:
        raise cli.CommandError(str(error)) from None
    console = Console()
    render(sizing, fleet, console)
    if sizing.over_quota:
        names = ", ".join(usage.name for usage in sizing.over_quota)
        console.print(
            f"[bold red]Over the Direct PUT quota ({names}): request an increase before "
            "deploying.[/]"
        )
        return 1
    return 0
