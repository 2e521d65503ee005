"""Inventory collector: every AWS IoT thing as an ``aws:iot:thing`` record, once an hour.

Splunk enriches Device Defender, log and lifecycle events with each thing's firmware version,
thing type, groups and segment from this inventory (Well-Architected IOTOPS08).

Source. When fleet indexing is on (``thingIndexingMode`` REGISTRY or REGISTRY_AND_SHADOW) one
SearchIndex page returns 100 things with their groups, and connectivity too when
``thingConnectivityIndexingMode`` is STATUS. Otherwise the registry is listed and each thing's
groups looked up, at most ``MAX_GROUP_LOOKUPS`` things per run so a large fleet fits the Lambda
timeout and the ListThingGroupsForThing rate; things past the cap, and things whose lookup
failed after its retries (counted as ``GroupLookupErrors``; the run goes on), are exported
without ``thingGroupNames`` (absent means "not looked up", never "in no group").

Decisions:

* No permission to read the indexing configuration (AccessDenied/Unauthorized): list the
  registry, which needs only list permissions, and log a warning naming the missing action.
* The index not ready or missing on the first SearchIndex page (e.g. just after the indexing
  configuration changed): list the registry for this run. On a later page: fail, since part
  of the fleet was already exported and switching source would export it twice.
* Any other API error, after botocore's adaptive retries, fails the invocation; the schedule
  runs again next hour. Records already read are put first, and stay delivered.
* Out of time (``collect.deadline``): no call starts that could end after the point where the
  run must stop reading; what is buffered is put, the run logs how far it got (pages read,
  whether a nextToken was pending) and emits its metrics, then fails with ``OutOfTimeError``
  instead of a Lambda timeout.
* Shadows and Device Defender data in the index are never exported: they can be large, and
  may hold data that does not belong in an inventory.

Records are put 500 to a PutRecordBatch (``collect.delivery.RecordBuffer``), across pages.

Every record is valid for ``transform/schemas/thing.json`` by construction: values that would
not fit are converted (numbers and booleans in attributes become their JSON text) or left out
and counted; a thing whose name the transform would reject is not exported at all. Thing names
are only ever passed as API parameters, after that check.

Environment: ``DELIVERY_STREAM_NAME`` (required, see ``collect.delivery``) and
``MAX_GROUP_LOOKUPS`` (whole number >= 0, default 1000; unset or blank means the default).
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal, TypeAlias

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from collect import delivery
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


def collect_inventory(
    iot: IotClient,
    firehose: FirehoseClient,
    *,
    max_group_lookups: int,
    collected_at: int,
    summary: Summary | None = None,
    deadline: Deadline = NO_DEADLINE,
) -> Summary:
    """Export every thing, one API page at a time, so memory stays flat whatever the fleet size.

    ``collected_at`` (epoch ms) is stamped on every record of the run. ``summary`` is updated
    in place as records are delivered, so a caller still knows how far a failed run got.
    """
    summary = Summary() if summary is None else summary
    plan = choose_source(iot)
    summary.source = plan.collector
    pages: Iterator[list[dict[str, Any]]] | None = None
    if plan.collector == FLEET_INDEX:
        fleet_pages = _fleet_index_records(iot, plan.connectivity, collected_at, summary)
        try:
            first = next(fleet_pages)
        except ClientError as error:
            if error_code(error) not in _INDEX_UNAVAILABLE:
                raise
            logger.warning(
                "the fleet index cannot be searched yet; listing the registry for this run",
                extra={"error_code": error_code(error)},
            )
            plan = Plan(REGISTRY)
            summary.source = plan.collector
        else:
            pages = itertools.chain([first], fleet_pages)
    if pages is None:
        pages = _registry_records(iot, max_group_lookups, collected_at, summary)
    logger.info(
        "exporting the thing inventory",
        extra={"source": plan.collector, "connectivity": plan.connectivity},
    )
    buffer = RecordBuffer(firehose, deadline, collector=SERVICE, identity=_thing_identity)
    try:
        with buffer:
            for records in pages:
                for record in records:
                    buffer.add(record)
            summary.listing_complete = True
    finally:
        summary.things_exported = buffer.put
        summary.things_not_put = buffer.not_put
    return summary


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
    """Hourly EventBridge schedule entry point; the event only identifies the trigger."""
    summary = Summary()
    deadline = Deadline.from_context(context)
    try:
        limit = max_group_lookups(os.environ)
        delivery.stream_name()  # fail before reading the fleet if the stream is not configured
        logger.info(
            "inventory run started",
            extra={"trigger": _trigger(event), "max_group_lookups": limit},
        )
        collect_inventory(
            iot_client(deadline),
            delivery.firehose_client(deadline),
            max_group_lookups=limit,
            collected_at=time.time_ns() // 1_000_000,
            summary=summary,
            deadline=deadline,
        )
    except OutOfTimeError as error:
        summary.stopped_at_deadline = True
        logger.error(
            "inventory run stopped before the Lambda timeout: out of time; the next scheduled "
            "run starts over",
            extra={"summary": summary.as_dict(), "reason": str(error)},
        )
        raise
    except Exception:
        logger.exception(
            "inventory run failed; the next scheduled run starts over",
            extra={"summary": summary.as_dict()},
        )
        raise
    finally:
        metrics.add_metric(
            name="ThingsExported", unit=MetricUnit.Count, value=summary.things_exported
        )
        metrics.add_metric(
            name="GroupLookupsSkipped", unit=MetricUnit.Count, value=summary.group_lookups_skipped
        )
        metrics.add_metric(name="InventoryPagesRead", unit=MetricUnit.Count, value=summary.pages)
        metrics.add_metric(name="ThingsNotPut", unit=MetricUnit.Count, value=summary.things_not_put)
        metrics.add_metric(
            name="GroupLookupErrors", unit=MetricUnit.Count, value=summary.group_lookup_errors
        )
        metrics.add_metric(
            name="InventoryRunsStopped", unit=MetricUnit.Count, value=summary.stopped_at_deadline
        )
        metrics.add_metric(
            name="InventoryNextTokenPending",
            unit=MetricUnit.Count,
            value=summary.next_token_pending,
        )
    if summary.group_lookups_skipped:
        logger.warning(
            "some things were exported without their groups: raise MAX_GROUP_LOOKUPS or turn "
            "on fleet indexing",
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


# --- reading the APIs ------------------------------------------------------------------------


def _search_index_pages(iot: IotClient) -> Iterator[tuple[list[Any], bool]]:
    """SearchIndex has no boto3 paginator: follow nextToken until the service stops giving one.

    Yields each page's things and whether it gave a nextToken.
    """
    request: dict[str, Any] = {
        "indexName": INDEX_NAME,
        "queryString": QUERY_ALL_THINGS,
        "maxResults": SEARCH_PAGE_SIZE,
    }
    seen: set[str] = set()
    while True:
        response = iot.search_index(**request)
        things = response.get("things")
        token = response.get("nextToken")
        yield things if isinstance(things, list) else [], bool(token)
        if not token:
            return
        if token in seen:  # would loop until the Lambda timeout
            raise RuntimeError("SearchIndex returned a nextToken it had already returned")
        seen.add(token)
        request["nextToken"] = token


def _fleet_index_records(
    iot: IotClient, connectivity: bool, collected_at: int, summary: Summary
) -> Iterator[list[dict[str, Any]]]:
    for things, more in _search_index_pages(iot):
        summary.pages += 1
        summary.next_token_pending = more
        records = []
        for raw in things:
            record = _accepted(raw, FLEET_INDEX, collected_at, connectivity, summary)
            if record is not None:
                records.append(record)
        yield records


def _registry_records(
    iot: IotClient, max_lookups: int, collected_at: int, summary: Summary
) -> Iterator[list[dict[str, Any]]]:
    paginator = iot.get_paginator("list_things")
    for page in paginator.paginate(PaginationConfig={"PageSize": LIST_PAGE_SIZE}):
        summary.pages += 1
        summary.next_token_pending = bool(page.get("nextToken"))
        records = []
        for raw in page.get("things") or []:
            record = _accepted(raw, REGISTRY, collected_at, False, summary)
            if record is None:
                continue
            if summary.group_lookups >= max_lookups:
                summary.group_lookups_skipped += 1
                records.append(record)
                continue
            summary.group_lookups += 1
            groups = _groups_of(iot, record["thing"]["thingName"])
            if groups == _GONE:
                summary.things_gone += 1
                continue
            if groups == _UNREADABLE:
                summary.group_lookup_errors += 1
            else:
                record["thing"]["thingGroupNames"] = groups
            records.append(record)
        yield records


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
