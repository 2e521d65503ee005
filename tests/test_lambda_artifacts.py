"""What `sam build` produced: each function's artefact holds exactly what its code imports.

Runs from `make sam-build` (which builds first and sets SAM_BUILD_DIR); skipped otherwise.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from devtools.cfn_template import TEMPLATE_PATH, Stack, load_template
from tests.source_imports import runtime_imports

BUILD_DIR = Path(os.environ.get("SAM_BUILD_DIR", "")) if os.environ.get("SAM_BUILD_DIR") else None
pytestmark = pytest.mark.skipif(BUILD_DIR is None, reason="needs `make sam-build` (SAM_BUILD_DIR)")

REPO = TEMPLATE_PATH.parent.parent
FIRST_PARTY = ("transform", "collect", "provision", "respond", "shared")
# The package of its own each function ships, beside `shared`.
OWN_PACKAGE = {
    "TransformFunction": "transform",
    "AuditFindingsFunction": "collect",
    "InventoryFunction": "collect",
    "QuarantinePolicyFunction": "provision",
    "ResponderFunction": "respond",
}
# The Lambda Python runtime provides these; pinning our own copy would only add size.
RUNTIME_PROVIDED = {"boto3", "botocore"}
FUNCTIONS = {
    name: function["Properties"]["Handler"]
    for name, function in Stack(load_template()).of_type("AWS::Serverless::Function").items()
}


def artefact(function: str) -> Path:
    assert BUILD_DIR is not None
    path = BUILD_DIR / function
    assert path.is_dir(), f"{function} was not built"
    return path


def first_party_files(root: Path) -> set[str]:
    return {
        str(path.relative_to(root))
        for package in FIRST_PARTY
        for path in (root / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def resolvable(root: Path, module: str) -> bool:
    top = module.split(".", 1)[0]
    if top in sys.stdlib_module_names or top in RUNTIME_PROVIDED or top == "__future__":
        return True
    if top in FIRST_PARTY:
        as_path = root / module.replace(".", "/")
        return as_path.with_suffix(".py").is_file() or (as_path / "__init__.py").is_file()
    return (root / top).is_dir() or (root / f"{top}.py").is_file()


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_first_party_import_resolves_inside_the_artefact(function: str) -> None:
    root = artefact(function)
    handler_module = FUNCTIONS[function].rpartition(".")[0]
    assert resolvable(root, handler_module)
    unresolved = {
        f"{path}: {module}"
        for path in first_party_files(root)
        if path.endswith(".py")
        for module in runtime_imports(root / path)
        if not resolvable(root, module)
    }
    assert unresolved == set()


def source_files(*packages: str) -> set[str]:
    return {
        str(path.relative_to(REPO))
        for package in packages
        for path in (REPO / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def test_every_function_has_a_package_of_its_own() -> None:
    assert set(OWN_PACKAGE) == set(FUNCTIONS)
    for function, package in OWN_PACKAGE.items():
        assert FUNCTIONS[function].startswith(f"{package}."), function


@pytest.mark.parametrize("function", sorted(OWN_PACKAGE))
def test_an_artefact_is_its_own_package_and_the_shared_one_and_nothing_else(function: str) -> None:
    """No Lambda carries (or could import) another Lambda's package."""
    root = artefact(function)
    assert first_party_files(root) == source_files(OWN_PACKAGE[function], "shared")
    assert not (root / "tests").exists()


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_compiled_dependencies_are_for_the_lambda_runtime(function: str) -> None:
    """CPython 3.13 on arm64: a wheel for this build machine would not even import there."""
    root = artefact(function)
    for wheel in root.glob("*.dist-info/WHEEL"):
        tags = [
            line.split(":", 1)[1].strip()
            for line in wheel.read_text(encoding="utf-8").splitlines()
            if line.startswith("Tag:")
        ]
        assert tags, wheel
        for tag in tags:
            python, abi, platform = tag.split("-")
            if platform == "any":
                continue
            assert "aarch64" in platform, (wheel.parent.name, tag)
            assert python == "cp313" or abi == "abi3", (wheel.parent.name, tag)
    shared_objects = list(root.rglob("*.so"))
    assert all("x86_64" not in so.name for so in shared_objects)
    assert not list(root.rglob("*.cpython-311*"))  # nothing compiled for the build machine


# The transform's fast path: C extensions whose speed is the point, so they must be the builds
# for the Lambda runtime (CPython 3.13, manylinux, arm64), not a fallback or a foreign build.
FAST_PATH_WHEELS = ("msgspec", "pybase64")


@pytest.mark.parametrize("distribution", FAST_PATH_WHEELS)
def test_the_transform_ships_the_fast_path_wheels_for_the_lambda_runtime(distribution: str) -> None:
    root = artefact("TransformFunction")
    (wheel,) = root.glob(f"{distribution}-*.dist-info/WHEEL")
    tags = {
        line.split(":", 1)[1].strip()
        for line in wheel.read_text(encoding="utf-8").splitlines()
        if line.startswith("Tag:")
    }
    assert tags
    for tag in tags:
        python, abi, platform = tag.split("-")
        assert (python, abi) == ("cp313", "cp313"), tag
        assert platform.startswith("manylinux"), tag
        assert platform.endswith("aarch64"), tag
    assert list((root / distribution).rglob("*.cpython-313-aarch64-linux-gnu.so"))


# CPython 3.13's bytecode magic (importlib.util.MAGIC_NUMBER there), and PEP 552's flags for a
# hash-based .pyc checked against its source: bit 0 hash-based, bit 1 check_source.
CPYTHON_313_MAGIC = b"\xf3\r\r\n"
CHECKED_HASH_FLAGS = 0b11


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_module_ships_checked_bytecode_for_the_lambda_runtime(function: str) -> None:
    """/var/task is read-only: a module without its .pyc is compiled again on every cold start,
    and a timestamp-checked .pyc would be stale under the zip's file times."""
    root = artefact(function)
    sources = [path for path in root.rglob("*.py") if "__pycache__" not in path.parts]
    assert sources
    for source in sources:
        compiled = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
        assert compiled.is_file(), source.relative_to(root)
        header = compiled.read_bytes()[:8]
        assert header[:4] == CPYTHON_313_MAGIC, compiled
        assert int.from_bytes(header[4:8], "little") == CHECKED_HASH_FLAGS, compiled
