"""Every command-line entry point of the repository answers `--help` with its usage, exit
status 0, and touches nothing: `--help` once created a folder named `--help` (the app build)
and rewrote the README (the tables tool)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from iot_defender_splunk.cli import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("appbuild", "devtools", "bench", "iot_defender_splunk")


def _runs_as_main(path: Path) -> bool:
    """Whether the module has an `if __name__ == "__main__":` block."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            names = [n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)]
            if names == ["__name__"]:
                return True
    return False


def entry_modules() -> list[str]:
    modules = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "node_modules" in path.parts:
                continue
            dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            if path.name == "__main__.py":
                modules.append(dotted.removesuffix(".__main__"))
            elif _runs_as_main(path):
                modules.append(dotted)
    return modules


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    return subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_scan_finds_every_known_entry_point() -> None:
    assert {
        "appbuild.build_app",
        "appbuild.spl.check",
        "devtools.readme_tables",
        "bench.transform_bench",
        "iot_defender_splunk",
    } <= set(entry_modules())


@pytest.mark.parametrize("module", entry_modules())
def test_help_prints_usage_and_changes_nothing(module: str, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_bytes()
    answer = _run([module, "--help"], tmp_path)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.startswith("usage:")
    assert list(tmp_path.iterdir()) == []
    assert (ROOT / "README.md").read_bytes() == readme


@pytest.mark.parametrize("command", [command.NAME for command in COMMANDS])
def test_every_subcommand_answers_help(command: str, tmp_path: Path) -> None:
    answer = _run(["iot_defender_splunk", command, "--help"], tmp_path)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.startswith(f"usage: iot-defender-splunk {command}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("module", entry_modules())
def test_an_unknown_option_is_a_usage_error_not_a_traceback(module: str, tmp_path: Path) -> None:
    answer = _run([module, "--no-such-option"], tmp_path)
    assert answer.returncode == 2
    assert "Traceback" not in answer.stderr
    last = answer.stderr.strip().splitlines()[-1]
    assert ": error: " in last  # argparse's one line (a missing argument may be named first)
