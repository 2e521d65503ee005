"""What a Python source file imports when it runs, for the tests of package boundaries."""

from __future__ import annotations

import ast
from pathlib import Path


def runtime_imports(path: Path) -> set[str]:
    """Absolute module names a file imports at run time; ``if TYPE_CHECKING:`` blocks left out.

    Type-only imports (stubs such as mypy_boto3_*) are never installed in a Lambda artefact.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def top_level(modules: set[str]) -> set[str]:
    return {module.split(".", 1)[0] for module in modules}
