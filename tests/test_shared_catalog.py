"""The audit check catalogue: every check once, by its current name, former names found."""

from __future__ import annotations

import json

from shared.catalog import CATALOG_FILE, audit_check, audit_checks


def test_every_check_is_listed_once_by_its_current_name_in_the_catalogues_order() -> None:
    entries = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))["checks"]

    checks = audit_checks()

    assert [check.name for check in checks] == [entry["name"] for entry in entries]
    assert [check.severity for check in checks] == [entry["severity"] for entry in entries]
    former = {name for entry in entries for name in entry["former_names"]}
    assert former
    assert former.isdisjoint(check.name for check in checks)
    assert all(audit_check(name) in checks for name in former)
