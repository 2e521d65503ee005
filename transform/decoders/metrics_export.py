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
    sent = ctx.invocation.metric_versions
    emitted = 0
    for key, (item, seconds) in _highest_versions(items).items():
        version = item.get("version", 0)
        previous = sent.get(key)
        if previous is not None and version <= previous:
            continue  # an earlier record of this invocation already sent this datapoint
        sent[key] = version
        thing = item["thing"]
        item["origin"] = ORIGIN
        fields = {"thing": thing, "metric": item["name"]}
        emit(item, when=item["timestamp"], seconds=seconds, host=thing, fields=fields)
        emitted += 1
    ctx.invocation.duplicates_removed += len(items) - emitted


def _highest_versions(
    items: list[dict[str, Any]],
) -> dict[MetricKey, tuple[dict[str, Any], float | None]]:
    """Each datapoint once, at its highest ``version``, with its time in epoch seconds.

    AWS may export a datapoint (thing, metric, timestamp, dimension) more than once; the
    highest version is the one to keep. Across records of one invocation, ``decode`` sends a
    later copy only when its version is higher (the app's dedupe macro settles the rest).
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
    return best
