"""The test suite's own rules, checked on its source.

Test modules share helpers through helper modules (tests/<name>.py, no test_ prefix), never by
importing each other: importing a test module runs its collection-time code and re-collects its
tests under another name, and a rename breaks modules that have nothing to do with it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def imported_modules(path: Path) -> Iterator[str]:
    """Every module a source file imports, however it is written (`from tests import x` too)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            # A relative import inside tests/ is an import from the tests package.
            module = ".".join(filter(None, ["tests" if node.level else "", node.module or ""]))
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def cross_imports() -> set[tuple[str, str]]:
    """(importing test module, imported test module) for every test module importing another."""
    found = set()
    for path in sorted(TESTS.glob("test_*.py")):
        for module in imported_modules(path):
            package, _, name = module.partition(".")
            if package == "tests" and name.startswith("test_"):
                found.add((path.stem, name.split(".")[0]))
    return found


def test_no_test_module_imports_another() -> None:
    assert cross_imports() == set(), "share helpers through a helper module (tests/<name>.py)"
