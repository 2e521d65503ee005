"""What a SOAR playbook may ask for, validated before anything is read or changed.

Every request is one JSON object (SOAR's AWS Lambda app sends it as the ``payload``). A request
that cannot be understood is answered ``refused`` with the reason, never acted on in part; only
an invocation that is not a JSON object at all raises.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from shared.catalog import audit_check
from shared.names import THING_NAME_PATTERN

__all__ = [
    "ACTIONS",
    "ChangeSpec",
    "InvalidInvocationError",
    "RefusedError",
    "Request",
    "parse_request",
]

REQUEST_ID: Final = re.compile(r"[A-Za-z0-9-]{1,64}")
_THING: Final = re.compile(THING_NAME_PATTERN, re.ASCII)
_CERTIFICATE: Final = re.compile(r"[0-9a-f]{64}")
# Thing attribute names as IoT allows them; values only what a fleet-index term can hold safely.
_ATTRIBUTE: Final = re.compile(r"[a-zA-Z0-9_.,@/:#-]{1,128}", re.ASCII)
_ATTRIBUTE_VALUE: Final = re.compile(r"[a-zA-Z0-9_.-]{1,128}", re.ASCII)
_FINDING_ID: Final = re.compile(r"[a-zA-Z0-9_-]{1,128}", re.ASCII)
_AUDIT_TASK_ID: Final = re.compile(r"[a-zA-Z0-9_-]{1,40}", re.ASCII)
MAX_FINDINGS: Final = 25  # StartAuditMitigationActionsTask takes at most 25 finding ids
MAX_REQUESTED_BY: Final = 256
MAX_REASON: Final = 2048


class InvalidInvocationError(TypeError):
    """The invocation is not a request at all (not a JSON object): the only case that raises."""


class RefusedError(ValueError):
    """The request is understood as invalid or not allowed; the message says which rule."""


Check = Callable[[object], object]


def _pattern(pattern: re.Pattern[str], what: str = "") -> Check:
    def check(value: object) -> object:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise RefusedError(f"{what}must match {pattern.pattern}".strip())
        return value

    return check


def _boolean(value: object) -> object:
    if not isinstance(value, bool):
        raise RefusedError("must be true or false")
    return value


def _count(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RefusedError("must be a whole number >= 0")
    return value


def _finding_ids(value: object) -> object:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_FINDINGS:
        raise RefusedError(f"must be a list of 1 to {MAX_FINDINGS} finding ids")
    for item in value:
        _pattern(_FINDING_ID, "each finding id ")(item)
    if len(set(value)) != len(value):
        raise RefusedError("lists a finding twice")
    return list(value)


def _check_name(value: object) -> object:
    if not isinstance(value, str) or audit_check(value) is None:
        raise RefusedError("must be a Device Defender audit check name")
    check = audit_check(value)
    assert check is not None  # noqa: S101 - checked just above
    return check.name


THING: Final = _pattern(_THING)
GROUP: Final = _pattern(_THING)
ATTRIBUTE: Final = _pattern(_ATTRIBUTE)
VALUE: Final = _pattern(_ATTRIBUTE_VALUE)
CERTIFICATE: Final = _pattern(_CERTIFICATE, "(64 lowercase hex digits) ")


@dataclass(frozen=True)
class ChangeSpec:
    """One action: its required and optional keys (with defaults), and whether it changes AWS."""

    required: Mapping[str, Check]
    optional: Mapping[str, tuple[Check, object]] = field(default_factory=dict)
    changes: bool = True


_QUARANTINE_OPTIONS: Final = {"keep_certificate": (_boolean, False), "disconnect": (_boolean, True)}
ACTIONS: Final[Mapping[str, ChangeSpec]] = {
    "describe_thing": ChangeSpec({"thing_name": THING}, changes=False),
    "quarantine_thing": ChangeSpec({"thing_name": THING}, _QUARANTINE_OPTIONS),
    "quarantine_group": ChangeSpec(
        {"thing_group": GROUP, "expected_count": _count}, _QUARANTINE_OPTIONS
    ),
    "quarantine_version": ChangeSpec(
        {"attribute": ATTRIBUTE, "value": VALUE, "expected_count": _count}, _QUARANTINE_OPTIONS
    ),
    "release_thing": ChangeSpec({"thing_name": THING}),
    "release_group": ChangeSpec({"thing_group": GROUP, "expected_count": _count}),
    "release_version": ChangeSpec(
        {"attribute": ATTRIBUTE, "value": VALUE, "expected_count": _count}
    ),
    "deactivate_certificate": ChangeSpec({"certificate_id": CERTIFICATE}),
    "remediate_audit_finding": ChangeSpec(
        {},
        {
            "finding_ids": (_finding_ids, None),
            "audit_task_id": (_pattern(_AUDIT_TASK_ID), None),
            "check_name": (_check_name, None),
        },
    ),
}
_COMMON: Final = frozenset({"action", "request_id", "requested_by", "reason", "dry_run"})


@dataclass(frozen=True)
class Request:
    action: str
    request_id: str
    requested_by: str
    reason: str
    dry_run: bool
    params: Mapping[str, Any]

    @property
    def changes(self) -> bool:
        return ACTIONS[self.action].changes

    def __getitem__(self, key: str) -> Any:
        return self.params[key]


def parse_request(event: object) -> Request:
    """The request in ``event``; raises RefusedError naming the first problem found."""
    if not isinstance(event, Mapping):
        raise InvalidInvocationError(
            f"the responder takes one JSON object, not {type(event).__name__}"
        )
    action = event.get("action")
    if not isinstance(action, str) or action not in ACTIONS:
        raise RefusedError(f"unknown action {str(action)[:64]!r}; known: {', '.join(ACTIONS)}")
    spec = ACTIONS[action]
    request_id = event.get("request_id")
    if not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id):
        raise RefusedError("request_id must be 1-64 of A-Z, a-z, 0-9 and '-' (the idempotency key)")
    unknown = sorted(set(event) - _COMMON - set(spec.required) - set(spec.optional))
    if unknown:
        raise RefusedError(f"{action} takes no {', '.join(map(repr, unknown))}")
    requested_by = _text(event.get("requested_by", ""), "requested_by", MAX_REQUESTED_BY)
    reason = _text(event.get("reason", ""), "reason", MAX_REASON)
    if spec.changes and not (requested_by and reason):
        raise RefusedError(f"{action} changes AWS IoT: requested_by and reason are required")
    dry_run = event.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise RefusedError("dry_run must be true or false")
    params: dict[str, Any] = {}
    for key, check in spec.required.items():
        if key not in event:
            raise RefusedError(f"{action} needs {key}")
        params[key] = _checked(key, check, event[key])
    for key, (check, default) in spec.optional.items():
        params[key] = _checked(key, check, event[key]) if key in event else default
    if action == "remediate_audit_finding":
        _one_audit_target(params)
    return Request(action, request_id, requested_by, reason, dry_run, params)


def _checked(key: str, check: Check, value: object) -> object:
    try:
        return check(value)
    except RefusedError as error:
        raise RefusedError(f"{key} {error}") from None


def _text(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit or not value.isprintable():
        raise RefusedError(f"{what} must be printable text of at most {limit} characters")
    return value.strip()


def _one_audit_target(params: dict[str, Any]) -> None:
    by_findings = params["finding_ids"] is not None
    by_task = params["audit_task_id"] is not None or params["check_name"] is not None
    if by_findings == by_task:
        raise RefusedError(
            "remediate_audit_finding needs either finding_ids, or audit_task_id with check_name"
        )
    if by_task and (params["audit_task_id"] is None or params["check_name"] is None):
        raise RefusedError("remediate_audit_finding needs both audit_task_id and check_name")
