""".github/workflows: the CI gate runs `make test`, and both workflows hold to the security rules
zizmor checks in `make workflow-lint` (pinned actions, read-only token, no persisted credentials).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
ZIZMOR = REPO / ".venv" / "bin" / "zizmor"
# `uses: owner/repo@<40 hex> # vX.Y.Z`: a commit cannot move, the comment says which release.
PINNED_USES = re.compile(r"^\s*(?:- )?uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def load(path: Path) -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    """The `on:` block (YAML 1.1 reads a bare `on` key as True)."""
    on: dict[str, Any] = workflow["on"] if "on" in workflow else workflow[True]
    return on


def steps(workflow: dict[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_there_are_the_ci_gate_and_the_live_workflow() -> None:
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "live-splunk.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_version(path: Path) -> None:
    uses = [line for line in path.read_text(encoding="utf-8").splitlines() if "uses:" in line]
    assert uses
    for line in uses:
        assert PINNED_USES.match(line), line


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_token_is_read_only_and_checkout_keeps_no_credentials(path: Path) -> None:
    workflow = load(path)
    assert workflow["permissions"] == {"contents": "read"}
    assert all("permissions" not in job for job in workflow["jobs"].values())
    checkouts = [s for s in steps(workflow) if s.get("uses", "").startswith("actions/checkout@")]
    assert checkouts
    assert all(s["with"]["persist-credentials"] is False for s in checkouts)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expression_is_expanded_inside_a_shell_script(path: Path) -> None:
    """Template injection: `${{ }}` in `run:` is pasted into the script before it runs."""
    for step in steps(load(path)):
        assert "${{" not in step.get("run", ""), step.get("name", step["run"][:40])


def test_ci_runs_make_test_on_push_and_pull_request_with_both_pythons_and_node() -> None:
    workflow = load(REPO / ".github" / "workflows" / "ci.yml")
    assert set(triggers(workflow)) == {"push", "pull_request"}
    by_action = {s["uses"].split("@")[0]: s for s in steps(workflow) if "uses" in s}
    pythons = by_action["actions/setup-python"]["with"]["python-version"].split()
    # The last listed is the default python3: the dev default, 3.11; 3.13 is the Lambda runtime.
    assert pythons == ["3.13", "3.11"]
    assert "actions/setup-node" in by_action
    assert [s["run"] for s in steps(workflow) if "run" in s] == [
        "make test PYTHON=python3.11 PYTHON313=python3.13"
    ]


def test_live_workflow_pins_the_splunk_image_to_a_release() -> None:
    text = (REPO / ".github" / "workflows" / "live-splunk.yml").read_text(encoding="utf-8")
    images = re.findall(r"splunk/splunk:(\S+)", text)
    assert images
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", tag) for tag in images), images


def zizmor(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the pinned linter on a folder this test made
        [str(ZIZMOR), "--offline", "--persona", "pedantic", "--quiet", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_zizmor_passes_the_workflows_and_fails_an_unpinned_action(tmp_path: Path) -> None:
    """What `make workflow-lint` relies on: offline, zizmor exits non-zero on a finding."""
    good, bad = tmp_path / "good", tmp_path / "bad"
    for folder in (good, bad):
        shutil.copytree(REPO / ".github", folder / ".github")
    ci = bad / ".github" / "workflows" / "ci.yml"
    ci.write_text(
        re.sub(r"actions/checkout@[0-9a-f]{40} # \S+", "actions/checkout@v4", ci.read_text()),
        encoding="utf-8",
    )
    assert zizmor(good / ".github" / "workflows").returncode == 0
    failed = zizmor(bad / ".github" / "workflows")
    assert failed.returncode != 0
    assert "unpinned-uses" in failed.stdout
