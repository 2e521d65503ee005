"""The Makefile: `make help` (the default goal) lists every public target with what it does,
`make test` includes the workflow lint, and test-py313's interpreter can be named (CI's)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MAKEFILE = (REPO / "Makefile").read_text(encoding="utf-8")


def make(*args: str) -> str:
    done = subprocess.run(  # noqa: S603 - make on the repository's own Makefile
        ["make", "--no-print-directory", "-s", *args],  # noqa: S607 - make from PATH
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def phony_targets() -> set[str]:
    match = re.search(r"^\.PHONY:((?:.*\\\n)*.*)$", MAKEFILE, re.MULTILINE)
    assert match
    return set(match.group(1).replace("\\\n", " ").split())


def help_lines() -> dict[str, str]:
    lines = [line.split(None, 1) for line in make("help").splitlines()]
    assert all(len(line) == 2 for line in lines), lines
    listed = {line[0]: line[1] for line in lines}
    assert len(listed) == len(lines), "a target is listed twice"
    return listed


def test_help_lists_every_public_target_once_with_a_description() -> None:
    listed = help_lines()
    assert set(listed) == phony_targets()
    assert all(len(text) >= 10 for text in listed.values()), listed


def test_a_bare_make_shows_the_help() -> None:
    assert make() == make("help")


def test_make_test_runs_the_workflow_lint() -> None:
    match = re.search(r"^test:(.*?)##", MAKEFILE, re.MULTILINE)
    assert match
    assert "workflow-lint" in match.group(1).split()


def test_the_py313_venv_is_made_by_the_named_interpreter() -> None:
    recipe = make("-n", "-B", ".venv-py313/.installed", "PYTHON313=/opt/ci/python3.13")
    assert recipe.splitlines()[0] == "/opt/ci/python3.13 -m venv .venv-py313"
    default = make("-n", "-B", ".venv-py313/.installed")
    assert default.splitlines()[0] == "PYENV_VERSION=3.13.0 python3.13 -m venv .venv-py313"
