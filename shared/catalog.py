"""Audit check catalogue: maps any check name AWS has used to its current name and severity."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import NamedTuple

CATALOG_FILE = Path(__file__).parent / "data" / "audit_checks.json"


class AuditCheck(NamedTuple):
    name: str
    severity: str


@functools.cache
def _checks_by_any_name() -> dict[str, AuditCheck]:
    with CATALOG_FILE.open(encoding="utf-8") as handle:
        entries = json.load(handle)["checks"]
    index: dict[str, AuditCheck] = {}
    for entry in entries:
        check = AuditCheck(entry["name"], entry["severity"])
        for name in (entry["name"], *entry["former_names"]):
            index[name] = check
    return index


def audit_check(name: str) -> AuditCheck | None:
    """The catalogue entry for a current or former check name; None for a check we do not know."""
    return _checks_by_any_name().get(name)
