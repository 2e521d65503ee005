"""Typed input and output structures of the fast path (msgspec), checked during the parse.

The JSON Schemas in transform/schemas stay the single source of input shapes: every
constraint here restates one of theirs, and tests/test_transform_fast_shapes.py compares the
two field by field. Where they differ, these are stricter, never looser: unknown fields are
forbidden (the schemas keep extras, which the fast path leaves to the reference path), and
numbers are limited to what orjson reads and writes exactly as msgspec does (integers within
int64, floats that print without a positive exponent).
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

# orjson reads integers outside [-2^63, 2^64) as floats, and writes floats of 1e16 and more
# as "1e+16" where msgspec writes "1e16": such numbers are left to the reference path.
# (msgspec bounds integers within int64 only, so the fast path stops at 2^63 - 1.)
INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**63 - 1
FLOAT_BOUND: Final = 1e16

Int = Annotated[int, Meta(ge=INT_MIN, le=INT_MAX)]
Float = Annotated[float, Meta(gt=-FLOAT_BOUND, lt=FLOAT_BOUND)]
Number = Int | Float
Count = Annotated[int, Meta(ge=0, le=INT_MAX)]
NonNegative = Count | Annotated[float, Meta(ge=0, lt=FLOAT_BOUND)]
Port = Annotated[int, Meta(ge=0, le=65535)]
Name = Annotated[str, Meta(min_length=1, max_length=128)]
# The thingName pattern "^[a-zA-Z0-9:_-]{1,128}$" is checked after the parse, once per
# distinct name (metrics_export.THING_NAME): a per-item regex would cost more than the parse.
ThingName = Annotated[str, Meta(min_length=1, max_length=128)]


class RuleEnvelope(Struct, forbid_unknown_fields=True, gc=False):
    """rule_envelope.json for the detect-export route, which adds no thing_name/received_at."""

    route: Literal["detect-export"]
    payload: Annotated[str, Meta(max_length=2_000_000)]


class Dimension(Struct, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    name: Name
    operator: Literal["IN", "NOT_IN"] | UnsetType = UNSET


class MetricValue(Struct, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    """metrics_export.json#/definitions/metricValue; minProperties 1 is checked after."""

    count: NonNegative | UnsetType = UNSET
    cidrs: list[Annotated[str, Meta(max_length=64)]] | UnsetType = UNSET
    ports: list[Port] | UnsetType = UNSET
    number: Number | UnsetType = UNSET
    numbers: list[Number] | UnsetType = UNSET
    strings: list[str] | UnsetType = UNSET


class Metric(Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True, gc=False):
    """metrics_export.json#/definitions/metric, fields in the order Detect writes them."""

    name: Name
    thing: ThingName
    value: MetricValue
    version: Count | UnsetType = UNSET
    timestamp: NonNegative
    dimension: Dimension | UnsetType = UNSET


class MetricsExport(Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True, gc=False):
    version: str | UnsetType = UNSET
    metrics: list[Metric]


# Output: one HEC event, fields in the order the reference path writes them.


class MetricFields(Struct, gc=False):
    thing: str
    metric: str
    origin: str


class MetricBody(Struct, omit_defaults=True, gc=False):
    name: str
    thing: str
    version: Count | UnsetType
    dimension: Dimension | UnsetType
    value: MetricValue


class MetricEvent(Struct, omit_defaults=True, gc=False):
    time: float
    source: str
    sourcetype: str
    index: str | UnsetType
    event: MetricBody
    host: str
    fields: MetricFields


# Audit completion notifications (audit_notification.json), in the order AWS writes them;
# the attributes are snake_case, their JSON names camelCase as AWS spells them.

TaskId = Annotated[str, Meta(pattern=r"^[a-zA-Z0-9_-]{1,40}\Z")]
AccountId = Annotated[str, Meta(pattern=r"^[0-9]{12}\Z")]
CheckName = Annotated[str, Meta(pattern=r"^[A-Z0-9_]{1,128}\Z")]
TaskStatus = Literal["COMPLETED", "FAILED", "CANCELED", "IN_PROGRESS"]
TaskType = Literal["ON_DEMAND_AUDIT_TASK", "SCHEDULED_AUDIT_TASK"]
CheckRunStatus = Literal[
    "FAILED",
    "CANCELED",
    "COMPLETED_COMPLIANT",
    "COMPLETED_NON_COMPLIANT",
    "IN_PROGRESS",
    "WAITING_FOR_DATA_COLLECTION",
]
# timeValue: a number or a date string. A negative number is no plausible time: the
# reference path re-stamps it, so the fast path refuses it here.
TimeValue = NonNegative | str


class CheckDetail(
    Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True, rename="camel", gc=False
):
    """audit_notification.json#/definitions/checkDetail."""

    check_name: CheckName
    check_run_status: CheckRunStatus
    non_compliant_resources_count: Count | UnsetType = UNSET
    total_resources_count: Count | UnsetType = UNSET
    suppressed_non_compliant_resources_count: Count | UnsetType = UNSET
    error_code: str | UnsetType = UNSET
    message: str | UnsetType = UNSET


class AuditNotification(
    Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True, rename="camel", gc=False
):
    """audit_notification.json#/definitions/envelope; its only list comes last, so the task
    event's body (scalars first) is the notification as it came."""

    account_id: AccountId | UnsetType = UNSET
    task_id: TaskId
    task_status: TaskStatus
    task_type: TaskType
    scheduled_audit_name: Annotated[str, Meta(max_length=128)] | UnsetType = UNSET
    failed_checks_count: Count | UnsetType = UNSET
    canceled_checks_count: Count | UnsetType = UNSET
    non_compliant_checks_count: Count | UnsetType = UNSET
    compliant_checks_count: Count | UnsetType = UNSET
    total_checks_count: Count | UnsetType = UNSET
    task_start_time: TimeValue
    audit_details: list[CheckDetail]


class TaskFields(Struct, gc=False):
    task_id: str
    task_type: str
    task_status: str


class TaskEvent(Struct, omit_defaults=True, gc=False):
    time: float
    source: str
    sourcetype: str
    index: str | UnsetType
    event: AuditNotification
    fields: TaskFields


class CheckFields(Struct, gc=False):
    task_id: str
    check_name: str
    check_run_status: str


class CheckBody(Struct, omit_defaults=True, rename="camel", gc=False):
    """The check's own fields, then the task's identity, then the catalogue's name and
    severity: the reference decoder's {**detail, **task} order."""

    check_name: str
    check_run_status: str
    non_compliant_resources_count: int | UnsetType
    total_resources_count: int | UnsetType
    suppressed_non_compliant_resources_count: int | UnsetType
    error_code: str | UnsetType
    message: str | UnsetType
    task_id: str
    task_type: str
    task_status: str
    task_start_time: float | str
    account_id: str | UnsetType
    scheduled_audit_name: str | UnsetType
    current_check_name: str = msgspec.field(name="check_name")
    severity: str | UnsetType = UNSET


class CheckEvent(Struct, omit_defaults=True, gc=False):
    time: float
    source: str
    sourcetype: str
    index: str | UnsetType
    event: CheckBody
    fields: CheckFields
