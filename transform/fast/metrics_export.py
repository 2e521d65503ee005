"""Fast path for Detect metric exports as the detect-export rule forwards them.

It takes a record only when its output provably equals the reference decoder's
(transform.decoders.metrics_export); otherwise it returns None before changing any state, and
the record takes the reference path. The proof for each record:

- the rule envelope and the export decode into the typed structures (shapes), which hold
  every constraint of the schemas and forbid the extras they allow;
- the export re-encodes to exactly its own bytes: so it is compact, its keys come in the
  structures' order, none repeats, and every number and string is spelled as both orjson and
  msgspec write it, so the events' bodies come out in the order and spelling the reference
  path writes;
- every timestamp is plausible (the reference path would re-stamp it and say so).

Duplicates are removed with the reference decoder's rule, on the same tuple keys and the
same per-invocation versions.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Sequence
from typing import Final

import msgspec
from msgspec import UNSET

from transform.context import Invocation, MetricKey
from transform.decoders.metrics_export import ORIGIN
from transform.fast.codec import fast_b64decode
from transform.fast.shapes import (
    Metric,
    MetricBody,
    MetricEvent,
    MetricFields,
    MetricsExport,
    RuleEnvelope,
)
from transform.sourcetypes import METRIC
from transform.timestamps import EARLIEST_PLAUSIBLE, epoch_seconds

# common.json#/definitions/thingName, anchored at the very end (a "$" would let "pump\n" by).
THING_NAME: Final = re.compile(r"[a-zA-Z0-9:_-]{1,128}")

_ENVELOPE: Final = msgspec.json.Decoder(RuleEnvelope)
_EXPORT: Final = msgspec.json.Decoder(MetricsExport)
_ENCODER: Final = msgspec.json.Encoder()
_REFUSED: Final = (msgspec.ValidationError, msgspec.DecodeError)
# The route as the rule writes it. Base64 holds no quote, so other kinds' payloads cannot
# contain it; a route spelled with escapes is left to the reference path, like any refusal.
_ROUTE: Final = b'"detect-export"'

# Thing names and timestamps recur from record to record (one fleet, one export schedule), so
# the verdicts on them are kept for the container's life. Both are pure functions of the
# value; the bounds keep a large fleet from growing the memory without limit.
MAX_KNOWN_THINGS: Final = 10_000
_known_things: set[str] = set()
_seconds: Final = functools.lru_cache(maxsize=512, typed=True)(epoch_seconds)


def transform(raw: bytes, invocation: Invocation) -> tuple[bytes, int] | None:
    """The record's HEC lines and how many events they hold; None when it is not for us."""
    if _ROUTE not in raw:  # a substring search spares other kinds a refused decode
        return None
    export = _export(raw)
    if export is None:
        return None
    items = export.metrics
    seconds_of = _plausible_seconds(items, invocation.latest_plausible)
    if seconds_of is None:
        return None
    keys = _keys(items, seconds_of)
    chosen = _deduplicated(items, keys, invocation.metric_versions)
    invocation.duplicates_removed += len(items) - len(chosen)
    if not chosen:
        return b"", 0
    return _ENCODER.encode_lines(_events(chosen, seconds_of, invocation)), len(chosen)


def _export(raw: bytes) -> MetricsExport | None:
    """The export inside a detect-export rule record, if the fast path can vouch for it."""
    try:
        payload = fast_b64decode(_ENVELOPE.decode(raw).payload)
        export = _EXPORT.decode(payload)
    except (*_REFUSED, ValueError):
        return None
    if _ENCODER.encode(export) != payload:
        return None
    items = export.metrics
    if not _valid_things({item.thing for item in items}):
        return None
    # metricValue's minProperties 1. In bytes that are their own canonical encoding, with
    # every key one of the structures' own, this text can only be an empty "value" object.
    if b'"value":{}' in payload:
        return None
    return export


def _valid_things(things: set[str]) -> bool:
    """Whether every name matches THING_NAME; only names not already known are matched."""
    unknown = things - _known_things
    if not all(map(THING_NAME.fullmatch, unknown)):
        return False
    if len(_known_things) + len(unknown) > MAX_KNOWN_THINGS:
        _known_things.clear()
    _known_things.update(unknown)
    return True


def _plausible_seconds(items: Sequence[Metric], latest: float) -> dict[object, float] | None:
    """Epoch seconds of each distinct timestamp, or None if any would need a fallback time."""
    seconds_of: dict[object, float] = {}
    for raw in {item.timestamp for item in items}:
        seconds = _seconds(raw)
        if seconds is None or not EARLIEST_PLAUSIBLE <= seconds <= latest:
            return None
        seconds_of[raw] = seconds
    return seconds_of


def _keys(items: Sequence[Metric], seconds_of: dict[object, float]) -> list[MetricKey]:
    """The reference decoder's datapoint identities: one time in any unit is one datapoint."""
    return [
        (
            item.thing,
            item.name,
            seconds_of[item.timestamp],
            ""
            if item.dimension is UNSET
            else f"{item.dimension.name}|{item.dimension.operator or ''}",
        )
        for item in items
    ]


def _deduplicated(
    items: Sequence[Metric], keys: list[MetricKey], sent: dict[MetricKey, int]
) -> list[Metric]:
    """Each datapoint once, at its highest version, in first-seen order (the reference rule).

    A key tuple's hash is recomputed on every lookup by key, and is most of the cost here. The
    usual record repeats none of its datapoints, none was sent by an earlier record, and all
    have one version: its keys are hashed once, into ``last``, and the set and dict work after
    reuses the hashes held there. Only contested datapoints take the reference decoder's loop.
    """
    if not items:
        return []
    versions = [0 if item.version is UNSET else item.version for item in items]
    last = dict(zip(keys, range(len(keys)), strict=True))
    if len(last) < len(keys):
        contested = sent.keys() & last.keys()
    else:  # no key repeats in this record
        record = set(last)
        unsent = record.difference(sent)
        if len(unsent) == len(keys):  # and none was sent before
            if versions.count(versions[0]) == len(versions):
                sent.update(dict.fromkeys(last, versions[0]))
            else:
                sent.update(zip(keys, versions, strict=True))
            return list(items)
        contested = record.difference(unsent)
    return _contested(items, keys, versions, last=last, contested=contested, sent=sent)


def _contested(
    items: Sequence[Metric],
    keys: list[MetricKey],
    versions: list[int],
    *,
    last: dict[MetricKey, int],
    contested: set[MetricKey],
    sent: dict[MetricKey, int],
) -> list[Metric]:
    """The contested datapoints (``contested``: already sent by an earlier record; and any that
    repeat in this one) through the reference decoder's loop; the rest merged at once."""
    repeats: set[int] = set()
    if len(last) < len(keys):  # the positions that are not their key's last are repeats
        repeats = set(range(len(keys))).difference(last.values())
        contested.update(map(keys.__getitem__, repeats))
    previous = {key: sent.pop(key) for key in contested if key in sent}
    sent.update(zip(keys, versions, strict=True))
    for key in contested:
        del sent[key]
    sent.update(previous)
    # Every position of a contested key is its key's last or a repeat: no scan of all keys.
    positions = sorted(repeats.union(map(last.__getitem__, contested)))
    return _resolve(items, keys, versions, positions, sent)


def _resolve(
    items: Sequence[Metric],
    keys: list[MetricKey],
    versions: list[int],
    positions: list[int],
    sent: dict[MetricKey, int],
) -> list[Metric]:
    """The reference decoder's loop over the contested datapoints' positions alone, in order: a
    later, higher copy replaces the first one where it stands; a copy no higher than what was
    sent is dropped."""
    chosen = list(items)
    keep = [True] * len(items)
    slots: dict[MetricKey, int] = {}
    for at in positions:
        key, version = keys[at], versions[at]
        slot = slots.get(key)
        keep[at] = slot is None
        if slot is None:
            earlier = sent.get(key)
            if earlier is not None and version <= earlier:
                keep[at] = False
                continue
            slots[key] = at
        elif version <= versions[slot]:
            continue
        else:
            chosen[slot], versions[slot] = items[at], version
        sent[key] = version
    return list(itertools.compress(chosen, keep))


def _events(
    items: Sequence[Metric], seconds_of: dict[object, float], invocation: Invocation
) -> list[MetricEvent]:
    source = invocation.stream_source
    index = invocation.index_by_sourcetype.get(METRIC) or UNSET
    return [
        MetricEvent(
            seconds_of[item.timestamp],
            source,
            METRIC,
            index,
            MetricBody(item.name, item.thing, item.version, item.dimension, item.value),
            item.thing,
            MetricFields(item.thing, item.name, ORIGIN),
        )
        for item in items
    ]
