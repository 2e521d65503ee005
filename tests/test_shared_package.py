"""Package boundaries, checked on the source: no Lambda imports another Lambda's package, and the
shared package needs nothing beyond the standard library (so every artefact can carry it)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.source_imports import runtime_imports, top_level

REPO = Path(__file__).resolve().parent.parent
LAMBDA_PACKAGES = ("transform", "collect", "provision", "respond")


def sources(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", LAMBDA_PACKAGES)
def test_a_lambda_package_imports_no_other_lambda_package(package: str) -> None:
    others = set(LAMBDA_PACKAGES) - {package}
    crossing = {
        f"{path.relative_to(REPO)}: {name}"
        for path in sources(package)
        for name in top_level(runtime_imports(path)) & others
    }
    assert crossing == set()


def test_the_shared_package_imports_only_the_standard_library_and_itself() -> None:
    allowed = set(sys.stdlib_module_names) | {"__future__", "shared"}
    outside = {
        f"{path.relative_to(REPO)}: {name}"
        for path in sources("shared")
        for name in top_level(runtime_imports(path)) - allowed
    }
    assert outside == set()


def test_the_checker_sees_a_crossing_import(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text(
        "from typing import TYPE_CHECKING\nimport collect.delivery\n"
        "if TYPE_CHECKING:\n    import boto3\n",
        encoding="utf-8",
    )
    assert runtime_imports(module) == {"typing", "collect.delivery"}
