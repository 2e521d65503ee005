"""License bytes per datapoint (bench.license_bytes): issue 11's targets hold, and the figures
measure what they say (bytes are exact, so unlike timings they can be asserted)."""

from __future__ import annotations

import base64
import statistics
from functools import cache

import orjson

from bench import license_bytes
from bench.inputs import build_batch
from bench.license_bytes import TARGET_RAW_RATIO, LicenseFigures


@cache
def figures() -> LicenseFigures:
    return license_bytes.measure([build_batch("metrics_export", "1MB")])


def _exported_items() -> list[object]:
    """Every datapoint of the 1 MB batch as Detect wrote it, read without the bench's code."""
    items = []
    for record in build_batch("metrics_export", "1MB").event["records"]:
        envelope = orjson.loads(base64.b64decode(record["data"]))
        items.extend(orjson.loads(base64.b64decode(envelope["payload"]))["metrics"])
    return items


def test_our_raw_per_detect_datapoint_is_at_most_095_of_the_naive_wrappers() -> None:
    raw = figures().exports["1MB"]
    assert raw.ratio <= TARGET_RAW_RATIO
    assert raw.ours < raw.naive - 20, "origin and timestamp no longer ride in every body"


def test_the_naive_figure_is_the_datapoint_as_aws_sent_it_compact() -> None:
    items = _exported_items()
    # The naive baseline keeps duplicates; every item it wraps is one event.
    assert figures().exports["1MB"].naive == statistics.fmean(map(len, map(orjson.dumps, items)))


def test_the_figure_with_index_time_fields_counts_them_too() -> None:
    raw = figures().exports["1MB"]
    fields = len(b'{"thing":"","metric":"","origin":"detect-export"}')
    assert raw.ours_with_fields > raw.ours + fields


def test_every_device_report_datapoint_is_no_larger_than_detects_of_the_same_metric() -> None:
    sizes = {s.name: s for s in figures().metrics}
    assert len(sizes) == 10, "every device-side metric both ways send"
    for name, size in sizes.items():
        assert size.device_datapoint <= size.detect, name


def test_only_the_device_only_detail_is_left_out_of_the_comparison() -> None:
    sizes = {s.name: s for s in figures().metrics}
    with_detail = {name for name, s in sizes.items() if s.device_only > 0}
    assert with_detail == {
        "aws:destination-ip-addresses",
        "aws:listening-tcp-ports",
        "aws:listening-udp-ports",
    }
    counts = [s for s in sizes.values() if s.name not in with_detail]
    assert all(s.device == s.device_datapoint for s in counts)
