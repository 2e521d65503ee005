"""The AppInspect report reader: `make package-check` passes only when it exits 0, so it must
fail on a failure, an error, or a file that is not a report at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from appbuild import appinspect_report


def _report(*results: str) -> dict[str, Any]:
    checks = [
        {"name": f"check_{n}", "result": result, "messages": [{"message": f"said {n}"}]}
        for n, result in enumerate(results)
    ]
    summary = {result: results.count(result) for result in set(results)}
    return {"summary": summary, "reports": [{"groups": [{"checks": checks}]}]}


def _run(tmp_path: Path, content: str) -> int:
    path = tmp_path / "appinspect.json"
    path.write_text(content, encoding="utf-8")
    return appinspect_report.main([str(path)])


@pytest.mark.parametrize(
    ("results", "status"),
    [
        (("success", "warning", "not_applicable"), 0),
        (("success", "failure"), 1),
        (("error",), 1),
    ],
)
def test_exit_status_follows_blocking_results(
    tmp_path: Path, results: tuple[str, ...], status: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(tmp_path, json.dumps(_report(*results))) == status
    out = capsys.readouterr().out
    for n, result in enumerate(results):
        shown = result in ("failure", "error", "warning")
        assert (f"{result}: check_{n}: said {n}" in out) is shown


def test_a_summary_count_alone_blocks(tmp_path: Path) -> None:
    # A report whose groups were cut off still says in its summary that a check failed.
    assert _run(tmp_path, json.dumps({"summary": {"failure": 1}, "reports": []})) == 1


@pytest.mark.parametrize(
    ("content", "says"),
    [("{not json", "is not JSON"), ("[]", "not an AppInspect report"), ("{}", "no summary")],
)
def test_what_is_not_a_report_fails_in_one_line(
    tmp_path: Path, content: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(tmp_path, content) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert says in err[0]


def test_a_missing_report_fails_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert appinspect_report.main([str(tmp_path / "absent.json")]) == 1
    assert "cannot read" in capsys.readouterr().err
