"""Audit check catalogue: maps any check name AWS has used to its current name and severity.

The one source of the catalogue: the transform reads it, and the app build writes the Splunk
lookup (`iot_defender_audit_checks.csv`, with each check's description and remediation) from it.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import NamedTuple

CATALOG_FILE = Path(__file__).parent / "data" / "audit_checks.json"


class AuditCheck(NamedTuple):
    name: str
    severity: str
    description: str
    remediation: str


@functools.cache
def _entries() -> tuple[tuple[AuditCheck, tuple[str, ...]], ...]:
    """Each check with its former names, in the catalogue's order."""
    with CATALOG_FILE.open(encoding="utf-8") as handle:
        entries = json.load(handle)["checks"]
    return tuple(
        (
            AuditCheck(e["name"], e["severity"], e["description"], e["remediation"]),
            tuple(e["former_names"]),
        )
        for e in entries
    )


@functools.cache
def _checks_by_any_name() -> dict[str, AuditCheck]:
    return {name: check for check, former in _entries() for name in (check.name, *former)}


def audit_check(name: str) -> AuditCheck | None:
    """The catalogue entry for a current or former check name; None for a check we do not know."""
    return _checks_by_any_name().get(name)


def audit_checks() -> tuple[AuditCheck, ...]:
    """Every check the catalogue knows, by its current name, in the catalogue's order."""
    return tuple(check for check, _ in _entries())
