"""Detect metrics export: one ``aws:iot:defender:metric`` event per exported datapoint.

This is the highest-volume input, so the loop is kept tight: one pass keys every datapoint,
converting each distinct timestamp once, and hands the converted time to ``emit``.
"""

from __future__ import annotations

from typing import Any

from transform.context import MetricKey, RecordContext
from transform.decoders.common import valid_items
from transform.sourcetypes import METRIC
from transform.timestamps import epoch_seconds

KIND = "metrics_export"
ORIGIN = "detect-export"


def decode(doc: dict[str, Any], ctx: RecordContext, *, source: str | None = None) -> None:
    items = valid_items(ctx, doc, kind=KIND, key="metrics", item="metric")
    if not items:
        return
    emit = ctx.emitter(METRIC, source)
    for item, seconds in _deduplicated(items, ctx):
        thing = item["thing"]
        item["origin"] = ORIGIN
        fields = {"thing": thing, "metric": item["name"]}
        emit(item, when=item["timestamp"], seconds=seconds, host=thing, fields=fields)


def _deduplicated(
    items: list[dict[str, Any]], ctx: RecordContext
) -> list[tuple[dict[str, Any], float | None]]:
    """Keep the highest ``version`` of each datapoint, across all records of the invocation.

    AWS may export a datapoint (thing, metric, timestamp, dimension) more than once. Within a
    record the highest version wins outright; a later record's copy is sent only when its
    version is higher than what was already sent (the app's dedupe macro settles the rest).
    Returns each kept item with its timestamp in epoch seconds.
    """
    seconds_of: dict[object, float | None] = {}
    best: dict[MetricKey, tuple[dict[str, Any], float | None]] = {}
    for item in items:
        raw = item["timestamp"]
        if raw in seconds_of:
            seconds = seconds_of[raw]
        else:
            seconds = seconds_of[raw] = epoch_seconds(raw)
        dimension = item.get("dimension")
        key = (
            item["thing"],
            item["name"],
            seconds or 0.0,  # seconds and ms spellings of one time are one datapoint
            f"{dimension['name']}|{dimension.get('operator', '')}" if dimension else "",
        )
        kept = best.get(key)
        if kept is None or item.get("version", 0) > kept[0].get("version", 0):
            best[key] = (item, seconds)
    sent = ctx.invocation.metric_versions
    fresh = []
    for key, (item, seconds) in best.items():
        version = item.get("version", 0)
        previous = sent.get(key)
        if previous is None or version > previous:
            sent[key] = version
            fresh.append((item, seconds))
    ctx.invocation.duplicates_removed += len(items) - len(fresh)
    return fresh
