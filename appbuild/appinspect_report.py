"""Read splunk-appinspect's JSON report and fail on any failure or error.

splunk-appinspect exits 0 whatever it finds, so `make package-check` runs this on its JSON
output: it prints the summary and every warning (the README lists them with reasons) and exits
1 when a check failed or errored.
"""

from __future__ import annotations

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


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m appbuild.appinspect_report <report.json>\n")
        return 2
    report = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
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
    sys.exit(main(sys.argv[1:]))
