"""Read splunk-appinspect's JSON report and fail on any failure or error.

splunk-appinspect exits 0 whatever it finds, so `make package-check` runs this on its JSON
output: it prints the summary and every warning (the README lists them with reasons) and exits
1 when a check failed or errored.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BLOCKING = ("failure", "error")


def checks(report: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for app_report in report.get("reports", []):
        for group in app_report.get("groups", []):
            yield from group.get("checks", [])


def messages(check: dict[str, Any]) -> list[str]:
    return [str(m.get("message", m)).strip() for m in check.get("messages", [])]


class ReportError(Exception):
    """The file is not an AppInspect JSON report: the check cannot say the package is clean."""


def read_report(path: Path) -> dict[str, Any]:
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ReportError(f"cannot read {path}: {error.strerror}") from error
    except ValueError as error:
        raise ReportError(f"{path} is not JSON: {error}") from error
    if not isinstance(report, dict) or not isinstance(report.get("summary"), dict):
        raise ReportError(f"{path} is not an AppInspect report (no summary object)")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m appbuild.appinspect_report",
        description="Print an AppInspect JSON report's summary and warnings; exit 1 on any "
        "failure or error (splunk-appinspect itself always exits 0).",
    )
    parser.add_argument("report", type=Path, help="the JSON report (--output-file)")
    args = parser.parse_args(argv)
    try:
        report = read_report(args.report)
    except ReportError as error:
        sys.stderr.write(f"appinspect_report: {error}\n")
        return 1
    summary = report["summary"]
    sys.stdout.write("AppInspect: " + ", ".join(f"{k} {v}" for k, v in summary.items()) + "\n")
    blocking = 0
    for check in checks(report):
        result = check.get("result")
        if result in BLOCKING or result == "warning":
            for message in messages(check) or [""]:
                sys.stdout.write(f"  {result}: {check.get('name')}: {message}\n")
        blocking += result in BLOCKING
    if blocking or any(summary.get(key, 0) for key in BLOCKING):
        sys.stdout.write(f"AppInspect found {blocking} blocking check(s)\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
