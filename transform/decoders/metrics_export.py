"""Detect metrics export: one ``aws:iot:defender:metric`` event per exported datapoint."""

from __future__ import annotations

from typing import Any

from transform.context import MetricKey, RecordContext
from transform.decoders.common import valid_items
from transform.sourcetypes import METRIC

KIND = "metrics_export"
ORIGIN = "detect-export"


def decode(doc: dict[str, Any], ctx: RecordContext, *, source: str | None = None) -> None:
    items = valid_items(ctx, doc, kind=KIND, key="metrics", item="metric")
    if not items:
        return
    for item in _deduplicated(items, ctx):
        thing = item["thing"]
        name = item["name"]
        item["origin"] = ORIGIN
        ctx.emit(
            METRIC,
            item,
            when=item["timestamp"],
            host=thing,
            source=source,
            fields={"thing": thing, "metric": name, "origin": ORIGIN},
        )


def _key(item: dict[str, Any]) -> MetricKey:
    dimension = item.get("dimension")
    dimension_key = f"{dimension['name']}|{dimension.get('operator', '')}" if dimension else ""
    return (item["thing"], item["name"], float(item["timestamp"]), dimension_key)


def _deduplicated(items: list[dict[str, Any]], ctx: RecordContext) -> list[dict[str, Any]]:
    """Keep the highest ``version`` of each datapoint, across all records of the invocation.

    AWS may export a datapoint (thing, metric, timestamp, dimension) more than once. Within a
    record the highest version wins outright; a later record's copy is sent only when its
    version is higher than what was already sent (the app's dedupe macro settles the rest).
    """
    best: dict[MetricKey, dict[str, Any]] = {}
    for item in items:
        key = _key(item)
        kept = best.get(key)
        if kept is None or item.get("version", 0) > kept.get("version", 0):
            best[key] = item
    sent = ctx.invocation.metric_versions
    fresh = []
    for key, item in best.items():
        version = item.get("version", 0)
        previous = sent.get(key)
        if previous is None or version > previous:
            sent[key] = version
            fresh.append(item)
    ctx.invocation.duplicates_removed += len(items) - len(fresh)
    return fresh
