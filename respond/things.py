"""Reading a thing's security-relevant state, and the AWS IoT calls that change it.

Every read the responder makes before acting lives here, so a dry run, a real run and
``describe_thing`` see a thing the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.aws import IotClient

CERTIFICATE_ARN_MARKER = ":cert/"
PAGE_SIZE = 250
# What a fleet-index search asks for per page (SearchIndex allows at most 100).
SEARCH_PAGE_SIZE = 100


@dataclass
class Certificate:
    certificate_id: str
    status: str
    shared_with: list[str] = field(default_factory=list)  # other things it is attached to

    def as_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"certificate_id": self.certificate_id, "status": self.status}
        if self.shared_with:
            shown["shared_with"] = self.shared_with
        return shown


@dataclass
class ThingState:
    """What quarantine and release look at and change."""

    groups: list[str]
    certificates: list[Certificate]
    principals: list[str]  # non-certificate principals (Cognito identities and the like)
    quarantine_group: str

    @property
    def quarantined(self) -> bool:
        return self.quarantine_group in self.groups

    def as_dict(self) -> dict[str, Any]:
        return {
            "groups": list(self.groups),
            "quarantined": self.quarantined,
            "certificates": [certificate.as_dict() for certificate in self.certificates],
        }


def read_state(iot: IotClient, thing: str, quarantine_group: str) -> ThingState:
    """The thing's groups and certificates now; ResourceNotFoundException if it does not exist."""
    iot.describe_thing(thingName=thing)
    groups = sorted(
        group["groupName"]
        for page in _pages(iot, "list_thing_groups_for_thing", thingName=thing)
        for group in page.get("thingGroups", [])
    )
    principals = [
        arn
        for page in _pages(iot, "list_thing_principals", thingName=thing)
        for arn in page.get("principals", [])
    ]
    certificates = [
        _certificate(iot, arn.rpartition(CERTIFICATE_ARN_MARKER)[2], arn, thing)
        for arn in principals
        if CERTIFICATE_ARN_MARKER in arn
    ]
    others = [arn for arn in principals if CERTIFICATE_ARN_MARKER not in arn]
    return ThingState(groups, certificates, others, quarantine_group)


def certificate_status(iot: IotClient, certificate_id: str) -> str:
    described = iot.describe_certificate(certificateId=certificate_id)
    return str(described["certificateDescription"]["status"])


def things_of_certificate(iot: IotClient, certificate_arn: str) -> list[str]:
    return sorted(
        name
        for page in _pages(iot, "list_principal_things", principal=certificate_arn)
        for name in page.get("things", [])
    )


def _certificate(iot: IotClient, certificate_id: str, arn: str, thing: str) -> Certificate:
    others = [name for name in things_of_certificate(iot, arn) if name != thing]
    return Certificate(certificate_id, certificate_status(iot, certificate_id), others)


def things_in_group(iot: IotClient, group: str, limit: int) -> list[str]:
    """Up to ``limit`` + 1 thing names of the group (one more tells that there are too many)."""
    names: list[str] = []
    for page in _pages(iot, "list_things_in_thing_group", thingGroupName=group):
        names.extend(page.get("things", []))
        if len(names) > limit:
            break
    return sorted(names[: limit + 1])


def things_with_attribute(iot: IotClient, attribute: str, value: str, limit: int) -> list[str]:
    """Up to ``limit`` + 1 things whose registry attribute has the value, from the fleet index.

    ``value`` is one term of ``[a-zA-Z0-9_.-]`` (checked by the request), so it needs no quoting.
    """
    query = f"attributes.{attribute}:{value}"
    names: list[str] = []
    token: str | None = None
    while True:
        page = iot.search_index(
            queryString=query,
            maxResults=SEARCH_PAGE_SIZE,
            **({"nextToken": token} if token else {}),
        )
        names.extend(thing["thingName"] for thing in page.get("things", []))
        token = page.get("nextToken")
        if not token or len(names) > limit:
            break
    return sorted(set(names))[: limit + 1]


def connectivity(iot: IotClient, thing: str) -> dict[str, Any] | None:
    """The fleet index's connectivity for the thing; None when that indexing is not on."""
    try:
        page = iot.search_index(queryString=f"thingName:{thing}", maxResults=1)
    except (ClientError, BotoCoreError):
        return None
    things = page.get("things", [])
    state = things[0].get("connectivity") if things else None
    if not isinstance(state, dict):
        return None
    return {
        "connected": state.get("connected"),
        "timestamp": state.get("timestamp"),
        "disconnect_reason": state.get("disconnectReason"),
    }


def active_violations(iot: IotClient, thing: str) -> list[dict[str, Any]] | None:
    """Active Detect violations; None when Detect cannot be asked (not enabled, no access)."""
    try:
        pages = list(_pages(iot, "list_active_violations", thingName=thing))
    except (ClientError, BotoCoreError):
        return None
    return [
        {
            "violation_id": violation.get("violationId"),
            "behavior": (violation.get("behavior") or {}).get("name"),
            "metric": (violation.get("behavior") or {}).get("metric"),
            "security_profile": violation.get("securityProfileName"),
            "started_at": _epoch(violation.get("violationStartTime")),
        }
        for page in pages
        for violation in page.get("activeViolations", [])
    ]


def _pages(iot: IotClient, operation: str, **arguments: Any) -> Iterator[dict[str, Any]]:
    paginator = iot.get_paginator(operation)  # type: ignore[call-overload]
    config = {"PageSize": PAGE_SIZE}
    yield from paginator.paginate(**arguments, PaginationConfig=config)


def _epoch(value: object) -> float | None:
    timestamp = getattr(value, "timestamp", None)
    return float(timestamp()) if callable(timestamp) else None
