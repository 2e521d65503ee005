"""Inventory collector: every AWS IoT thing as an ``aws:iot:thing`` record, once an hour.

Splunk enriches Device Defender, log and lifecycle events with each thing's firmware version,
thing type, groups and segment from this inventory (Well-Architected IOTOPS08).

Source. When fleet indexing is on (``thingIndexingMode`` REGISTRY or REGISTRY_AND_SHADOW) one
SearchIndex page returns 100 things with their groups, and connectivity too when
``thingConnectivityIndexingMode`` is STATUS. Otherwise the registry is listed and each thing's
groups looked up, at most ``MAX_GROUP_LOOKUPS`` things per export so the lookups fit the
ListThingGroupsForThing rate. The lookups rotate through the fleet: each export starts where
the last one stopped (the offset is kept in the checkpoint item), so every thing gets its
groups within ceil(fleet / MAX_GROUP_LOOKUPS) exports. Things outside this export's window,
and things whose lookup failed after its retries (counted as ``GroupLookupErrors``; the run
goes on), are exported without ``thingGroupNames`` (absent means "not looked up", never "in
no group").

An export is resumable (``collect.checkpoint``, key ``inventory``): one export is in flight at
a time, and the hourly schedule resumes an unfinished one at its cursor instead of starting at
page 1; it starts a new export only once the last one finished. The source, the export's
``collectedAt`` and the group window are fixed when the export starts and kept in the cursor,
so every slice of one export exports the same way. After each PutRecordBatch the cursor (page
token, things behind it) is saved; a slice that runs out of time, or meets an API error past
its retries, ends at its checkpoint and invokes this function again with
``{"resume": "inventory"}`` (``collect.continuation``, with its progress and slice-count
guards).

Decisions:

* No permission to read the indexing configuration (AccessDenied/Unauthorized): list the
  registry, which needs only list permissions, and log a warning naming the missing action.
* The index not ready or missing on the first SearchIndex page of an export (e.g. just after
  the indexing configuration changed): list the registry for this export. Later on, the
  slice ends at its checkpoint: switching source would export part of the fleet twice.
* Out of time (``collect.deadline``): no call starts that could end after the point where the
  run must stop reading; what is buffered is put, the checkpoint saved, the next slice
  invoked, and the run logs how far it got and emits its metrics before the Lambda timeout.
* Shadows and Device Defender data in the index are never exported: they can be large, and
  may hold data that does not belong in an inventory.

Records are put 500 to a PutRecordBatch (``collect.delivery.RecordBuffer``), across pages.

Every record is valid for ``transform/schemas/thing.json`` by construction: values that would
not fit are converted (numbers and booleans in attributes become their JSON text) or left out
and counted; a thing whose name the transform would reject is not exported at all. Thing names
are only ever passed as API parameters, after that check.

Environment: ``DELIVERY_STREAM_NAME`` (required, see ``collect.delivery``),
``CHECKPOINT_TABLE_NAME`` (required), ``MAX_SLICES`` (see ``collect.continuation``) and
``MAX_GROUP_LOOKUPS`` (whole number >= 0, default 1000; unset or blank means the default).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal, TypeAlias

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from collect import delivery
from collect.checkpoint import (
    ClaimRefusedError,
    ExportStalledError,
    LeaseLostError,
    checkpoint_store,
)
from collect.continuation import SLICE_ENDINGS, Slice, lambda_client
from collect.cursor import Position, listing
from collect.deadline import Deadline, OutOfTimeError
from collect.delivery import NO_DEADLINE, RecordBuffer, iot_client
from shared.aws import IotClient, error_code
from shared.firehose import FirehoseClient
from shared.names import thing_name
from shared.observability import METRICS_NAMESPACE
from shared.settings import integer_setting

SERVICE = "inventory-collector"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)

Collector: TypeAlias = Literal["fleet-index", "registry"]

FLEET_INDEX: Final = "fleet-index"
REGISTRY: Final = "registry"

RECORD_TYPE: Final = "aws:iot:thing"
SCHEMA_VERSION: Final = 1

INDEX_NAME: Final = "AWS_Things"
QUERY_ALL_THINGS: Final = "thingName:*"
# SearchIndex maxResults: the API reference says it "cannot exceed 100".
SEARCH_PAGE_SIZE: Final = 100
# ListThings and ListThingGroupsForThing accept maxResults up to 250 (service model).
LIST_PAGE_SIZE: Final = 250

MAX_GROUP_LOOKUPS_ENV: Final = "MAX_GROUP_LOOKUPS"
DEFAULT_MAX_GROUP_LOOKUPS: Final = 1000
MAX_GROUP_LOOKUPS_LIMIT: Final = 999_999_999

_INDEXED_MODES = frozenset({"REGISTRY", "REGISTRY_AND_SHADOW"})
_DENIED = frozenset({"AccessDeniedException", "UnauthorizedException"})
_INDEX_UNAVAILABLE = frozenset({"IndexNotReadyException", "ResourceNotFoundException"})
_MAX_THING_TYPE_NAME = 128
_GONE: Final = "gone"
_UNREADABLE: Final = "unreadable"
_LOGGED_VALUE_CHARS = 200

CHECKPOINT_KEY: Final = "inventory"


@dataclass
class Summary:
    """What one run did, returned by the handler and logged; filled in as the run goes."""

    source: str | None = None
    things_exported: int = 0
    group_lookups: int = 0
    group_lookups_skipped: int = 0
    things_invalid: int = 0
    things_gone: int = 0
    things_not_put: int = 0
    group_lookup_errors: int = 0
    values_dropped: int = 0
    pages: int = 0
    listing_complete: bool = False
    next_token_pending: bool = False
    stopped_at_deadline: bool = False
    outcome: str | None = None
    # Just after the last thing put: where the next slice resumes (see ``export_cursor``).
    cursor: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    """Where the inventory comes from this run, and whether connectivity is in it."""

    collector: Collector
    connectivity: bool = False


def max_group_lookups(environ: Mapping[str, str]) -> int:
    """``MAX_GROUP_LOOKUPS`` as a whole number >= 0; a bad value stops the run before any call."""
    return integer_setting(
        environ, MAX_GROUP_LOOKUPS_ENV, DEFAULT_MAX_GROUP_LOOKUPS, 0, MAX_GROUP_LOOKUPS_LIMIT
    )


def choose_source(iot: IotClient) -> Plan:
    """The fleet index when it holds the registry, else the registry itself."""
    try:
        response = iot.get_indexing_configuration()
    except ClientError as error:
        if error_code(error) not in _DENIED:
            raise
        logger.warning(
            "cannot read the fleet indexing configuration; listing the registry instead "
            "(grant iot:GetIndexingConfiguration and iot:SearchIndex to use the fleet index)",
            extra={"error_code": error_code(error)},
        )
        return Plan(REGISTRY)
    config = response.get("thingIndexingConfiguration", {})
    if config.get("thingIndexingMode") in _INDEXED_MODES:
        return Plan(FLEET_INDEX, config.get("thingConnectivityIndexingMode") == "STATUS")
    return Plan(REGISTRY)


def export_cursor(plan: Plan, collected_at: int, group_offset: int) -> dict[str, Any]:
    """Where a new export starts: its source, its records' stamp, its group-lookup window."""
    return {
        "source": plan.collector,
        "connectivity": plan.connectivity,
        "collectedAt": collected_at,
        "groupOffset": group_offset,
        "ordinal": 0,
        "lookups": 0,
        **Position().as_dict(),
    }


def collect_inventory(
    iot: IotClient,
    firehose: FirehoseClient,
    *,
    max_group_lookups: int,
    collected_at: int,
    summary: Summary | None = None,
    deadline: Deadline = NO_DEADLINE,
    cursor: Mapping[str, Any] | None = None,
    on_put: Callable[[Summary], None] = lambda _: None,
) -> Summary:
    """Export every thing from ``cursor`` (None: a new export), one API page at a time.

    Memory stays flat whatever the fleet size. ``collected_at`` (epoch ms) is stamped on every
    record of a new export. ``summary`` is updated in place as records are delivered, so a
    caller still knows how far a failed run got; ``on_put`` is told after each batch
    Firehose accepted whole (``summary.cursor`` moved).
    """
    summary = Summary() if summary is None else summary
    if cursor is None:
        cursor = export_cursor(choose_source(iot), collected_at, 0)
    state = dict(cursor)
    summary.source = state["source"]
    logger.info(
        "exporting the thing inventory",
        extra={"source": state["source"], "connectivity": state["connectivity"]},
    )

    def put(mark: dict[str, Any]) -> None:
        summary.things_exported, summary.things_not_put = buffer.put, buffer.not_put
        summary.cursor = mark
        on_put(summary)

    buffer = RecordBuffer(
        firehose, deadline, collector=SERVICE, identity=_thing_identity, on_put=put
    )
    try:
        with buffer:
            for raw, after in listing(_fetch(iot, state, summary), Position.from_dict(state)):
                state.update(after.as_dict(), ordinal=state["ordinal"] + 1)
                record = _exported(iot, raw, state, max_group_lookups, summary)
                if record is not None:
                    buffer.add(record, dict(state))
        summary.listing_complete = True  # listed to the end, and the last batch put
        summary.cursor = state
    finally:
        summary.things_exported = buffer.put
        summary.things_not_put = buffer.not_put
    return summary


def _fetch(
    iot: IotClient, state: dict[str, Any], summary: Summary
) -> Callable[[str | None], tuple[list[Any], str | None]]:
    """One page of the export's source, counted; a new export's first page may fall back."""

    def fetch(token: str | None) -> tuple[list[Any], str | None]:
        summary.pages += 1
        if state["source"] == FLEET_INDEX:
            try:
                return _page(_search_index_page(iot, token), summary)
            except ClientError as error:
                new_export = token is None and state["ordinal"] == 0
                if not new_export or error_code(error) not in _INDEX_UNAVAILABLE:
                    raise
                logger.warning(
                    "the fleet index cannot be searched yet; listing the registry for this export",
                    extra={"error_code": error_code(error)},
                )
                state.update(source=REGISTRY, connectivity=False)
                summary.source = REGISTRY
        return _page(_list_things_page(iot, token), summary)

    return fetch


def _page(page: Mapping[str, Any], summary: Summary) -> tuple[list[Any], str | None]:
    things = page.get("things")
    token = page.get("nextToken") or None
    summary.next_token_pending = token is not None
    return (things if isinstance(things, list) else []), token


def _exported(
    iot: IotClient, raw: Any, state: Mapping[str, Any], max_lookups: int, summary: Summary
) -> dict[str, Any] | None:
    """The record of one listed thing, its groups looked up when it is in the export's window."""
    source = state["source"]
    record = _accepted(raw, source, state["collectedAt"], state["connectivity"], summary)
    if record is None or source == FLEET_INDEX:
        return record
    ordinal = state["ordinal"] - 1
    if not state["groupOffset"] <= ordinal < state["groupOffset"] + max_lookups:
        summary.group_lookups_skipped += 1
        return record
    summary.group_lookups += 1
    groups = _groups_of(iot, record["thing"]["thingName"])
    if groups == _GONE:
        summary.things_gone += 1
        return None
    if groups == _UNREADABLE:
        summary.group_lookup_errors += 1
    else:
        record["thing"]["thingGroupNames"] = groups
    return record


def next_group_offset(cursor: Mapping[str, Any], max_lookups: int) -> int:
    """Where the next export's group lookups start: after this one's window, or over again."""
    following = cursor["groupOffset"] + max_lookups
    return following if following < cursor["ordinal"] else 0


def _thing_identity(record: dict[str, Any]) -> dict[str, Any]:
    return {"thingName": record["thing"]["thingName"]}


def thing_record(
    raw: Mapping[str, Any],
    *,
    collector: Collector,
    collected_at: int,
    connectivity: bool = False,
) -> tuple[dict[str, Any] | None, list[str]]:
    """One API thing (ListThings item or fleet-index ThingDocument) as a schema-valid record.

    Returns the record, or None when the thing name would be rejected, and the names of the
    values left out because they would not fit the schema.
    """
    name = raw.get("thingName")
    if thing_name(name) is None:
        return None, ["thingName"]
    dropped: list[str] = []
    thing: dict[str, Any] = {"thingName": name}
    for key in ("thingId", "thingArn"):
        _copy_text(raw, thing, key, dropped)
    _copy_text(raw, thing, "thingTypeName", dropped, max_length=_MAX_THING_TYPE_NAME)
    if "attributes" in raw:
        attributes = _attributes(raw["attributes"], dropped)
        if attributes is not None:
            thing["attributes"] = attributes
    if "thingGroupNames" in raw:
        groups = _text_list(raw["thingGroupNames"], "thingGroupNames", dropped)
        if groups is not None:
            thing["thingGroupNames"] = groups
    if "version" in raw:
        version = raw["version"]
        if _is_int64(version):
            thing["version"] = version
        else:
            dropped.append("version")
    if connectivity and "connectivity" in raw:
        state = _connectivity(raw["connectivity"], dropped)
        if state:
            thing["connectivity"] = state
    record = {
        "recordType": RECORD_TYPE,
        "schemaVersion": SCHEMA_VERSION,
        "collectedAt": collected_at,
        "collector": collector,
        "thing": thing,
    }
    return record, dropped


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Hourly schedule, or ``{"resume": "inventory"}``: one slice of the inventory export."""
    summary = Summary()
    deadline = Deadline.from_context(context)
    try:
        limit = max_group_lookups(os.environ)
        delivery.stream_name()  # fail before reading the fleet if the stream is not configured
        logger.info(
            "inventory run started",
            extra={"trigger": _trigger(event), "max_group_lookups": limit},
        )
        _run_slice(event, context, deadline, limit, summary)
    except ExportStalledError as stalled:
        logger.error(
            "inventory export stalled; resume it by hand once the cause is fixed",
            extra={"summary": summary.as_dict(), "reason": str(stalled)},
        )
        raise
    except Exception:
        logger.exception(
            "inventory run failed; the next run resumes at the checkpoint",
            extra={"summary": summary.as_dict()},
        )
        raise
    finally:
        _publish(summary)
    if summary.group_lookups_skipped:
        logger.warning(
            "some things were exported without their groups: later exports look them up in "
            "turn; raise MAX_GROUP_LOOKUPS or turn on fleet indexing to have them sooner",
            extra={"group_lookups_skipped": summary.group_lookups_skipped},
        )
    if summary.things_invalid or summary.values_dropped:
        logger.warning(
            "some things or values did not fit the inventory schema and were left out",
            extra={
                "things_invalid": summary.things_invalid,
                "values_dropped": summary.values_dropped,
            },
        )
    logger.info("inventory run finished", extra={"summary": summary.as_dict()})
    return summary.as_dict()


def _run_slice(
    event: Any, context: LambdaContext, deadline: Deadline, limit: int, summary: Summary
) -> None:
    """Claim the export (resuming an unfinished one), put from its cursor, finish or hand off."""
    try:
        turn = Slice.claim(
            checkpoint_store(deadline),
            CHECKPOINT_KEY,
            context.aws_request_id,
            lease_ms=context.get_remaining_time_in_millis(),
            restart="when-done",
            event=event,
        )
    except ClaimRefusedError as refusal:
        summary.outcome = "skipped"
        logger.info("inventory export not run", extra={"reason": str(refusal)})
        return
    where = turn.checkpoint.where
    try:
        iot = iot_client(deadline)
        cursor = turn.checkpoint.cursor or export_cursor(
            choose_source(iot),
            time.time_ns() // 1_000_000,
            turn.checkpoint.carry.get("groupOffset", 0),
        )
        collect_inventory(
            iot,
            delivery.firehose_client(deadline),
            max_group_lookups=limit,
            collected_at=cursor["collectedAt"],
            summary=summary,
            deadline=deadline,
            cursor=cursor,
            on_put=lambda done: turn.save(
                done.cursor, done.things_exported + done.things_not_put, done.pages
            ),
        )
    except LeaseLostError as lost:
        summary.outcome = "taken-over"
        logger.warning("inventory slice taken over; it stops", extra={"reason": str(lost)})
        return
    except SLICE_ENDINGS as error:
        summary.stopped_at_deadline = isinstance(error, OutOfTimeError)
        logger.warning(
            "inventory slice ended at its checkpoint"
            + (" before the Lambda timeout: out of time" if summary.stopped_at_deadline else ""),
            extra={"summary": summary.as_dict(), **where(), "reason": str(error)},
        )
    if summary.listing_complete:
        turn.checkpoint.cursor = summary.cursor
        turn.checkpoint.carry = {"groupOffset": next_group_offset(summary.cursor, limit)}
    summary.outcome = turn.hand_off(
        summary.listing_complete, lambda: lambda_client(deadline), context.function_name
    )
    logger.info(f"inventory export {summary.outcome}", extra=where())


def _publish(summary: Summary) -> None:
    """Every counter of the slice, zeros included, so each invocation's metrics compare."""
    for name, value in (
        ("ThingsExported", summary.things_exported),
        ("GroupLookupsSkipped", summary.group_lookups_skipped),
        ("InventoryPagesRead", summary.pages),
        ("ThingsNotPut", summary.things_not_put),
        ("GroupLookupErrors", summary.group_lookup_errors),
        ("InventoryRunsStopped", summary.stopped_at_deadline),
        ("InventoryNextTokenPending", summary.next_token_pending),
        ("InventorySlicesContinued", summary.outcome == "continued"),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


# --- reading the APIs ------------------------------------------------------------------------


def _search_index_page(iot: IotClient, token: str | None) -> Mapping[str, Any]:
    """SearchIndex has no boto3 paginator: one page, following ``token``."""
    request: dict[str, Any] = {
        "indexName": INDEX_NAME,
        "queryString": QUERY_ALL_THINGS,
        "maxResults": SEARCH_PAGE_SIZE,
    }
    if token:
        request["nextToken"] = token
    return iot.search_index(**request)


def _list_things_page(iot: IotClient, token: str | None) -> Mapping[str, Any]:
    request: dict[str, Any] = {"maxResults": LIST_PAGE_SIZE}
    if token:
        request["nextToken"] = token
    return iot.list_things(**request)


def _groups_of(iot: IotClient, thing: str) -> list[str] | Literal["gone", "unreadable"]:
    """The thing's group names; ``_GONE`` when it was deleted since it was listed.

    ``_UNREADABLE`` when the lookup failed after its retries: that thing is exported without
    groups (absent means "not looked up") and the run goes on. Out of time still stops it.
    """
    names: list[str] = []
    paginator = iot.get_paginator("list_thing_groups_for_thing")
    try:
        for page in paginator.paginate(
            thingName=thing, PaginationConfig={"PageSize": LIST_PAGE_SIZE}
        ):
            for group in page.get("thingGroups") or []:
                name = _text(group.get("groupName")) if isinstance(group, Mapping) else None
                if name is not None:
                    names.append(name)
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            logger.info("thing deleted while the inventory ran", extra={"thing": thing})
            return _GONE
        return _unreadable(thing, error)
    except BotoCoreError as error:  # connection or read timeouts, after every retry
        return _unreadable(thing, error)
    return list(dict.fromkeys(names))


def _unreadable(thing: str, error: Exception) -> Literal["unreadable"]:
    logger.warning(
        "the thing's groups could not be read; it is exported without them",
        extra={"thing": thing, "error_code": error_code(error), "error": str(error)[:200]},
    )
    return _UNREADABLE


def _accepted(
    raw: Any, collector: Collector, collected_at: int, connectivity: bool, summary: Summary
) -> dict[str, Any] | None:
    """The thing's record, counting what did not fit; None (and a log line) for a bad name."""
    if not isinstance(raw, Mapping):
        summary.things_invalid += 1
        return None
    record, dropped = thing_record(
        raw, collector=collector, collected_at=collected_at, connectivity=connectivity
    )
    if record is None:
        summary.things_invalid += 1
        logger.warning(
            "thing left out: its name does not fit the inventory schema",
            extra={"thing_name": repr(raw.get("thingName"))[:_LOGGED_VALUE_CHARS]},
        )
        return None
    if dropped:
        summary.values_dropped += len(dropped)
        logger.debug(
            "values left out of a thing record",
            extra={"thing": record["thing"]["thingName"], "fields": dropped},
        )
    return record


def _trigger(event: Any) -> dict[str, str]:
    """The schedule event's id and time, for correlating runs; nothing else is read from it."""
    if not isinstance(event, Mapping):
        return {}
    return {
        key: value[:_LOGGED_VALUE_CHARS]
        for key in ("id", "time", "detail-type")
        if isinstance(value := event.get(key), str)
    }


# --- fitting values to the schema -----------------------------------------------------------


def _text(value: Any) -> str | None:
    """``value`` when it is a string JSON can carry (no lone surrogates), else None."""
    if not isinstance(value, str):
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


def _copy_text(
    raw: Mapping[str, Any],
    thing: dict[str, Any],
    key: str,
    dropped: list[str],
    *,
    max_length: int | None = None,
) -> None:
    if key not in raw:
        return
    value = _text(raw[key])
    if value is None or (max_length is not None and len(value) > max_length):
        dropped.append(key)
    else:
        thing[key] = value


def _attribute_value(value: Any) -> str | None:
    """Attribute values must be strings: numbers and booleans become their JSON text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # beyond Python's int-to-str digit limit
            return None
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    return _text(value)


def _attributes(value: Any, dropped: list[str]) -> dict[str, str] | None:
    if not isinstance(value, Mapping):
        dropped.append("attributes")
        return None
    attributes: dict[str, str] = {}
    for key, item in value.items():
        text_key = _text(key)
        text_value = _attribute_value(item)
        if text_key is None or text_value is None:
            dropped.append(f"attributes.{text_key if text_key is not None else '?'}")
        else:
            attributes[text_key] = text_value
    return attributes


def _text_list(value: Any, key: str, dropped: list[str]) -> list[str] | None:
    if not isinstance(value, list):
        dropped.append(key)
        return None
    texts = []
    for item in value:
        text = _text(item)
        if text is None:
            dropped.append(f"{key}[]")
        else:
            texts.append(text)
    return list(dict.fromkeys(texts))


def _is_int64(value: Any) -> bool:
    """An integer JSON can carry to the transform: orjson (both ends) refuses wider ones."""
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**64


def _connectivity(value: Any, dropped: list[str]) -> dict[str, Any]:
    """connected, timestamp (epoch ms, as the API gives it) and disconnectReason, if valid."""
    if not isinstance(value, Mapping):
        dropped.append("connectivity")
        return {}
    state: dict[str, Any] = {}
    if "connected" in value:
        if isinstance(value["connected"], bool):
            state["connected"] = value["connected"]
        else:
            dropped.append("connectivity.connected")
    if "timestamp" in value:
        timestamp = value["timestamp"]
        if _is_int64(timestamp) and timestamp >= 0:
            state["timestamp"] = timestamp
        else:
            dropped.append("connectivity.timestamp")
    if "disconnectReason" in value:
        reason = _text(value["disconnectReason"])
        if reason is None:
            dropped.append("connectivity.disconnectReason")
        else:
            state["disconnectReason"] = reason
    return state
