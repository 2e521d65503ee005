"""Detect metrics export: one ``aws:iot:defender:metric`` event per exported datapoint.

The highest-volume input, so duplicate removal and envelope building share one pass over the
datapoints, and each distinct timestamp is converted once per record.
"""

from __future__ import annotations

from typing import Any

from transform.context import Event, MetricKey, RecordContext
from transform.decoders.common import valid_items
from transform.sourcetypes import METRIC
from transform.timestamps import epoch_seconds

KIND = "metrics_export"
ORIGIN = "detect-export"
_FIELDS = {"origin": ORIGIN}
_UNSEEN = object()


def decode(doc: dict[str, Any], ctx: RecordContext, *, source: str | None = None) -> None:
    """Emit each datapoint once, at its highest ``version``.

    AWS may export a datapoint (thing, metric, timestamp, dimension) more than once. Within a
    record the highest version wins outright (a later, higher copy replaces the event); a
    later record's copy is sent only when its version is higher than what this invocation
    already sent (the app's dedupe macro settles the rest).
    """
    items = valid_items(ctx, doc, kind=KIND, key="metrics", item="metric")
    if not items:
        return
    build = ctx.builder(METRIC, source)
    sent = ctx.invocation.metric_versions
    envelopes: list[Event] = []
    position: dict[MetricKey, int] = {}
    seconds_of: dict[object, Any] = {}
    for item in items:
        raw = item["timestamp"]
        seconds = seconds_of.get(raw, _UNSEEN)
        if seconds is _UNSEEN:
            seconds = seconds_of[raw] = epoch_seconds(raw)
        thing = item["thing"]
        name = item["name"]
        dimension = item.get("dimension")
        key = (
            thing,
            name,
            seconds or 0.0,  # seconds and ms spellings of one time are one datapoint
            f"{dimension['name']}|{dimension.get('operator', '')}" if dimension else "",
        )
        version = item.get("version", 0)
        at = position.get(key)
        if at is None:
            previous = sent.get(key)
            if previous is not None and version <= previous:
                continue
        elif version <= envelopes[at]["event"].get("version", 0):
            continue
        sent[key] = version
        # _time holds the timestamp and the index-time fields the origin: neither is licensed
        # twice in the body. An item's own "origin" would contradict the indexed one.
        del item["timestamp"]
        item.pop("origin", None)
        if dimension:  # objects and lists last: see context.scalars_first
            item["dimension"] = item.pop("dimension")
        item["value"] = item.pop("value")
        envelope = build(item, raw, seconds, thing, {"thing": thing, "metric": name, **_FIELDS})
        if at is None:
            position[key] = len(envelopes)
            envelopes.append(envelope)
        else:
            envelopes[at] = envelope
    ctx.invocation.duplicates_removed += len(items) - len(envelopes)
    ctx.events.extend(envelopes)
