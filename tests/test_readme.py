"""The README's internal links: every `(#anchor)` names a heading GitHub renders, and every
relative link names a file of the repository, so a moved section or file cannot leave a dead
link behind."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from appbuild.spl.check import check_search
from appbuild.spl.fields import flatten
from devtools import readme_tables
from tests.built_app import app_knowledge
from tests.datasets import dataset_events

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6}) (.+)$")
FENCE = re.compile(r"^```")


def _prose_lines(text: str) -> list[str]:
    """Lines outside fenced code blocks (a `# comment` in a shell block is no heading)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading)
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: Counter[str] = Counter()
    found = set()
    for line in _prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if match:
            slug = github_slug(match.group(2))
            found.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
            seen[slug] += 1
    return found


def test_slugs_follow_githubs_rule() -> None:
    assert github_slug("Deploy (`sam deploy --guided`)") == "deploy-sam-deploy---guided"
    assert github_slug("Operate: the `iot-defender-splunk` command") == (
        "operate-the-iot-defender-splunk-command"
    )
    assert github_slug("2.1 Time") == "21-time"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_link_names_a_heading_or_a_file(document: Path) -> None:
    broken = []
    for line in _prose_lines(document.read_text(encoding="utf-8")):
        for target in LINK.findall(line):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            file_part, _, anchor = target.partition("#")
            linked = (document.parent / file_part).resolve() if file_part else document
            if not linked.exists():
                broken.append(f"{target}: no such file")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{target}: no such heading")
    assert broken == []


def test_the_readme_starts_with_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    block = lines[lines.index("```") + 1 : lines.index("```", lines.index("```") + 1)]
    assert [line.split()[:2] for line in block] == [["make", "demo"], ["make", "test"]]


def test_check_mode_reports_a_stale_table_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = tmp_path / "README.md"
    current = readme_tables.README.read_text(encoding="utf-8")
    _, end = readme_tables.markers("dashboards")
    stale = current.replace(end, "| stale | row |\n" + end)
    readme.write_text(stale, encoding="utf-8")
    monkeypatch.setattr(readme_tables, "README", readme)
    assert readme_tables.main(["--check"]) == 1
    assert readme.read_text(encoding="utf-8") == stale
    assert "stale" in capsys.readouterr().err
    assert readme_tables.main([]) == 0
    assert readme.read_text(encoding="utf-8") == current


def test_help_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("no markers here", encoding="utf-8")
    monkeypatch.setattr(readme_tables, "README", readme)
    with pytest.raises(SystemExit) as leaving:
        readme_tables.main(["--help"])
    assert leaving.value.code == 0
    assert readme.read_text(encoding="utf-8") == "no markers here"


def test_missing_markers_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("no markers here", encoding="utf-8")
    monkeypatch.setattr(readme_tables, "README", readme)
    assert readme_tables.main([]) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


# What a document may name as a source path: the repository's own top-level entries (not the
# build outputs, which a fresh clone does not have).
BUILD_OUTPUTS = {"build", "dist"}
TOP_LEVEL = {
    path.name
    for path in ROOT.iterdir()
    if not path.name.startswith(".") and path.name not in BUILD_OUTPUTS
} | {".github"}
CODE_SPAN = re.compile(r"`([^`\s]+)`")


def _named_paths(text: str) -> set[str]:
    """Repository paths a document names in code spans: `dir/file.ext` or `dir/`, under a
    top-level entry of the repository (placeholders such as `<kind>` and globs excluded)."""
    named = set()
    for span in CODE_SPAN.findall(text):
        path = span.rstrip(".,:;")
        if "/" not in path or any(mark in path for mark in "<>*$={}"):
            continue
        if path.split("/", 1)[0] in TOP_LEVEL:
            named.add(path.split("::", 1)[0])
    return named


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_path_a_document_names_exists(document: Path) -> None:
    text = "\n".join(_prose_lines(document.read_text(encoding="utf-8")))
    missing = sorted(path for path in _named_paths(text) if not (ROOT / path).exists())
    assert missing == []


MIGRATION = "## Coming from the AWS sample integration"
# The searches the migration section gives the AWS sample's users, with the events each reads
# (sourcetype, metric name) and the fields it needs them to have.
MIGRATION_SEARCHES = {
    "`iot_defender_metric(aws:num-listening-tcp-ports)` | timechart max(value.count) AS "
    "tcp_ports BY thing": (
        ("aws:iot:defender:metric", "aws:num-listening-tcp-ports"),
        {"value.count", "thing"},
    ),
    "`iot_defender_metric(aws:listening-tcp-ports)` thing::pump-0017 | "
    "`iot_defender_listening_ports` | timechart count BY port": (
        ("aws:iot:defender:metric", "aws:listening-tcp-ports"),
        {"value.ports{}", "thing"},
    ),
    "`iot_defender_audit_checks` | timechart latest(nonCompliantResourcesCount) BY check_name": (
        ("aws:iot:defender:audit:check", None),
        {"nonCompliantResourcesCount", "check_name"},
    ),
    "`iot_defender_audit_findings` | table _time check_name severity resource_type resource_id "
    "reasonForNonCompliance": (
        ("aws:iot:defender:audit:finding", None),
        {"check_name", "severity", "resource_type", "resource_id", "reasonForNonCompliance"},
    ),
}


def _migration_searches() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index(MIGRATION) :].split("\n## ", 1)[0]
    blocks = re.findall(r"```\n(.*?)```", section, flags=re.DOTALL)
    inline = re.findall(r"`` (`iot_defender.*?) ``", section)
    return [" ".join(search.split()) for search in [*blocks, *inline]]


def _event_fields(sourcetype: str, metric: str | None) -> set[str]:
    names: set[str] = set()
    for path in sorted((ROOT / "detections" / "data").glob("*.ndjson")):
        for event in dataset_events(str(path.relative_to(ROOT))):
            body = event["event"]
            if event["sourcetype"] == sourcetype and metric in (None, body.get("name")):
                names |= set(flatten(body)) | set(event.get("fields", {}))
    return names


def test_the_migration_section_shows_the_searches_this_test_checks() -> None:
    assert _migration_searches() == list(MIGRATION_SEARCHES)


@pytest.mark.parametrize("search", list(MIGRATION_SEARCHES))
def test_each_migration_search_is_valid_spl_over_fields_the_data_has(search: str) -> None:
    assert check_search(search, app_knowledge(), require_time_bound=False) == []
    (sourcetype, metric), needed = MIGRATION_SEARCHES[search]
    assert needed <= _event_fields(sourcetype, metric)
