"""Splunk license bytes per metric datapoint: ours against the naive baseline's, and a device
report's datapoint against Detect's of the same metric.

Splunk licenses an event's `_raw`, which for a HEC event is its `event` body. Both bodies are
measured serialised the same compact way (the naive baseline's body is the datapoint as AWS
sent it). Whether HEC's index-time `fields` count too is not stated in Splunk's documentation,
so the figure with them is shown beside the one without. Bytes, not time: the figures are
exact and the same on every machine.
"""

from __future__ import annotations

import base64
import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import orjson

from bench.inputs import Batch
from bench.naive import naive_handler
from bench.timing import run_ours_uncapped
from iot_defender_splunk.local_lambda import quiet_stdout
from iot_defender_splunk.simulator import simulate_fleet
from iot_defender_splunk.simulator.runner import run_transform
from transform.sourcetypes import METRIC

Doc = dict[str, Any]
_JSON_DECODER: Final = json.JSONDecoder()

TARGET_RAW_RATIO: Final = 0.95
# One simulated fleet sent both ways: the same device-side datapoints from Detect's export
# and from the devices' own reports (tests/test_simulator.py shows they are the same).
FLEET_DEVICES, FLEET_HOURS, FLEET_SEED, FLEET_END = 20, 6, 7, 1_795_400_000.0
# What a device report adds that Detect's export does not hold (interfaces, ports of each
# connection): measured apart, so the datapoint itself is compared like for like.
DEVICE_ONLY_KEYS: Final = frozenset({"detail"})


def _decoded(response: Doc) -> Iterator[bytes]:
    for record in response["records"]:
        if record["result"] == "Ok":
            yield base64.b64decode(record["data"])


def _metric_events(lines: Iterable[bytes]) -> Iterator[Doc]:
    for line in lines:
        event: Doc = orjson.loads(line)
        if event["sourcetype"] == METRIC:
            yield event


def compact_bytes(value: object) -> int:
    return len(orjson.dumps(value))


@dataclass(frozen=True)
class RawBytes:
    """Mean bytes per datapoint of one batch's metric events."""

    ours: float
    ours_with_fields: float
    naive: float

    @property
    def ratio(self) -> float:
        return self.ours / self.naive


def raw_bytes(batch: Batch) -> RawBytes:
    """Ours (every record transformed) and the naive baseline's, on the same batch."""
    response, _ = run_ours_uncapped(batch.event)
    ours = list(_metric_events(line for data in _decoded(response) for line in data.splitlines()))
    naive_response, _ = naive_handler(batch.event)
    naive = [
        compact_bytes(wrapper["event"])
        for data in _decoded(naive_response)
        for wrapper in _naive_wrappers(data)
        if wrapper["sourcetype"] == METRIC
    ]
    return RawBytes(
        ours=statistics.fmean(compact_bytes(e["event"]) for e in ours),
        ours_with_fields=statistics.fmean(
            compact_bytes(e["event"]) + compact_bytes(e["fields"]) for e in ours
        ),
        naive=statistics.fmean(naive),
    )


def _naive_wrappers(data: bytes) -> Iterator[Doc]:
    """The baseline concatenates its JSON objects with nothing between them."""
    decoder = _JSON_DECODER
    text = data.decode("utf-8")
    at = 0
    while at < len(text):
        wrapper, at = decoder.raw_decode(text, at)
        yield wrapper


@dataclass(frozen=True)
class MetricSizes:
    """Mean body bytes per datapoint of one metric, sent by Detect and by a device report."""

    name: str
    detect: float
    device: float
    device_only: float  # what the device report's body adds beyond the datapoint

    @property
    def device_datapoint(self) -> float:
        return self.device - self.device_only


def _body_sizes(detect: bool) -> dict[str, tuple[list[int], list[int]]]:
    """Per metric: each body's bytes, and the bytes of its device-only parts."""
    simulation = simulate_fleet(
        devices=FLEET_DEVICES, hours=FLEET_HOURS, seed=FLEET_SEED, end=FLEET_END, detect=detect
    )
    sizes: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for event in _metric_events(run_transform(simulation.batches).events):
        body = event["event"]
        whole, extra = sizes[body["name"]]
        whole.append(compact_bytes(body))
        datapoint = {key: value for key, value in body.items() if key not in DEVICE_ONLY_KEYS}
        extra.append(whole[-1] - compact_bytes(datapoint))
    return sizes


def device_against_detect() -> list[MetricSizes]:
    """Every metric both ways send, from one simulated fleet."""
    detect, device = _body_sizes(True), _body_sizes(False)
    return [
        MetricSizes(
            name=name,
            detect=statistics.fmean(detect[name][0]),
            device=statistics.fmean(device[name][0]),
            device_only=statistics.fmean(device[name][1]),
        )
        for name in sorted(detect.keys() & device.keys())
    ]


@dataclass(frozen=True)
class LicenseFigures:
    """Everything the bench prints about license bytes, measured once."""

    exports: dict[str, RawBytes]  # by batch size, Detect export batches only
    metrics: list[MetricSizes]


def measure(batches: list[Batch]) -> LicenseFigures:
    with quiet_stdout():
        exports = {b.size: raw_bytes(b) for b in batches if b.kind == "metrics_export"}
        metrics = device_against_detect()
    return LicenseFigures(exports=exports, metrics=metrics)


def print_license_bytes(figures: LicenseFigures) -> None:
    print("License bytes per metric datapoint (_raw = the HEC event body, compact JSON)")
    print(f"{'case':<24}{'ours':>8}{'+fields':>9}{'naive':>8}{'ours/naive':>12}")
    for size, raw in figures.exports.items():
        print(
            f"{'metrics_export ' + size:<24}{raw.ours:>8.1f}"
            f"{raw.ours_with_fields:>9.1f}{raw.naive:>8.1f}{raw.ratio:>11.2f}x"
        )
    print("+fields adds the index-time fields' JSON: Splunk's documentation does not say")
    print("whether HEC indexed fields count toward the license")
    print()
    print("Device report against Detect export, same metric, same simulated datapoints")
    print(f"{'metric':<38}{'Detect':>8}{'device':>8}{'of it detail':>14}")
    for sizes in figures.metrics:
        print(f"{sizes.name:<38}{sizes.detect:>8.1f}{sizes.device:>8.1f}{sizes.device_only:>14.1f}")
    print("detail holds what Detect does not export (interfaces, each connection's ports)")
    print()


def license_targets(figures: LicenseFigures) -> list[tuple[str, str, bool]]:
    """Issue 11's license-bytes targets: (label, figure, met)."""
    rows = []
    raw = figures.exports.get("1MB")
    if raw is not None:
        label = f"_raw/naive <= {TARGET_RAW_RATIO:.2f}x per datapoint, metrics_export 1MB"
        rows.append((label, f"{raw.ratio:.2f}x", raw.ratio <= TARGET_RAW_RATIO))
    worst = max(figures.metrics, key=lambda s: s.device_datapoint - s.detect)
    margin = worst.device_datapoint - worst.detect
    label = "device-report datapoint <= Detect's, every metric (worst)"
    rows.append((label, f"{margin:+.1f} B", margin <= 0))
    return rows


def print_license_targets(figures: LicenseFigures) -> None:
    """The rows below the speed targets, in the same layout."""
    for label, figure, met in license_targets(figures):
        print(f"  {label:<58}{figure:>10}  {'MET' if met else 'MISSED'}")
