"""appbuild/build_app.py's generated parts: the audit check lookup, the version, the icons.

Each is written by the build from one source (the transform's audit catalogue, pyproject.toml,
`draw_icon`), so none of them is kept by hand in splunk_app/.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from appbuild import build_app
from appbuild.build_app import (
    APP_ID,
    APP_SOURCE,
    GENERATED_LOOKUPS,
    ICONS,
    REPO,
    app_version,
    audit_checks_lookup,
    build,
    draw_icon,
    lookup_csv,
    package_file_name,
)
from shared.catalog import AuditCheck, audit_check, audit_checks
from tests.splunk_conf import read_conf


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("app"))


def lookup_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


# --- the audit check lookup -----------------------------------------------------------------------


def test_generated_lookups_are_not_kept_by_hand_in_the_source() -> None:
    for filename in GENERATED_LOOKUPS:
        assert not (APP_SOURCE / "lookups" / filename).exists(), filename


def test_built_audit_lookup_is_the_transforms_catalogue_row_for_row(app: Path) -> None:
    text = (app / "lookups" / "iot_defender_audit_checks.csv").read_text(encoding="utf-8")
    rows = lookup_rows(text)
    assert [row["check_name"] for row in rows] == [check.name for check in audit_checks()]
    for row in rows:
        as_row = AuditCheck(
            row["check_name"], row["severity"], row["description"], row["remediation"]
        )
        assert as_row == audit_check(row["check_name"])
    assert lookup_csv("iot_defender_audit_checks.csv") == text


def test_every_catalogued_check_says_what_it_means_and_how_to_fix_it() -> None:
    assert len(audit_checks()) == 17
    for check in audit_checks():
        assert check.severity in {"CRITICAL", "HIGH", "MEDIUM", "LOW"}, check.name
        assert len(check.description) >= 20, check.name
        assert len(check.remediation) >= 20, check.name


def test_a_former_check_name_reaches_the_current_entry() -> None:
    check = audit_check("REVOKED_CA_CERT_CHECK")
    assert check is not None
    assert check.name == "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK"
    assert check.remediation == "Deactivate the CA certificate"


def test_copied_lookups_are_read_from_the_source() -> None:
    source = (APP_SOURCE / "lookups" / "iot_defender_risky_ports.csv").read_text(encoding="utf-8")
    assert lookup_csv("iot_defender_risky_ports.csv") == source


_ONE_LINE = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00\r\n"))


@pytest.mark.property
@given(st.lists(st.tuples(_ONE_LINE, _ONE_LINE, _ONE_LINE, _ONE_LINE), max_size=5))
def test_lookup_keeps_any_one_line_text_whole(entries: list[tuple[str, str, str, str]]) -> None:
    """Commas and quotes in a description must not shift or split columns."""
    checks = tuple(AuditCheck(*entry) for entry in entries)
    with mock.patch.object(build_app, "audit_checks", return_value=checks):
        rows = lookup_rows(audit_checks_lookup())
    assert [
        AuditCheck(r["check_name"], r["severity"], r["description"], r["remediation"]) for r in rows
    ] == list(checks)


@pytest.mark.property
@given(_ONE_LINE, st.sampled_from(["\n", "\r", "\r\n"]), _ONE_LINE)
def test_a_line_break_in_the_catalogue_stops_the_build(head: str, brk: str, tail: str) -> None:
    """Splunk reads a lookup row per line: a line break would silently split the check's row."""
    check = AuditCheck("X_CHECK", "LOW", "ok", head + brk + tail)
    with (
        mock.patch.object(build_app, "audit_checks", return_value=(check,)),
        pytest.raises(ValueError, match="audit check 'X_CHECK': a lookup value must be one line"),
    ):
        audit_checks_lookup()


# --- one version ----------------------------------------------------------------------------------


def test_source_app_conf_holds_no_version() -> None:
    text = (APP_SOURCE / "default" / "app.conf").read_text(encoding="utf-8")
    assert not re.search(r"^\s*version\s*=", text, re.MULTILINE)


def wheel_version(tmp_path: Path) -> str:
    """The version the wheel's metadata carries, prepared by setuptools from a source copy."""
    source = tmp_path / "source"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(".git", ".venv*", "node_modules", "build", "dist", ".*"),
    )
    script = (
        "import sys; from setuptools.build_meta import prepare_metadata_for_build_wheel as p;"
        "print(p(sys.argv[1]))"
    )
    out = tmp_path / "meta"
    out.mkdir()
    done = subprocess.run(  # noqa: S603 - this interpreter on a folder this test made
        [sys.executable, "-c", script, str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    metadata = (out / done.stdout.strip().splitlines()[-1] / "METADATA").read_text()
    match = re.search(r"^Version: (\S+)$", metadata, re.MULTILINE)
    assert match, metadata[:300]
    return match.group(1)


def test_built_app_conf_package_name_and_wheel_carry_one_version(app: Path, tmp_path: Path) -> None:
    version = wheel_version(tmp_path)
    app_conf = read_conf(app / "default" / "app.conf")
    assert app_conf.get("launcher", "version") == version
    assert app_conf.get("id", "version") == version
    assert app_version() == version
    assert package_file_name() == f"{APP_ID}-{version}.tgz"


def test_make_package_names_the_tarball_by_package_file_name() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "-czf dist/$$($(PY) -c 'from appbuild.build_app import package_file_name;" in makefile


# --- icons ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "pixels", "dark"), ICONS)
def test_app_ships_each_icon_at_its_size(app: Path, name: str, pixels: int, dark: bool) -> None:
    with Image.open(app / "static" / name) as icon:
        assert icon.format == "PNG"
        assert icon.size == (pixels, pixels)
        alpha = icon.convert("RGBA").getchannel("A")
        # The rounded tile: opaque in the middle, transparent in the corners.
        assert alpha.getpixel((pixels // 2, pixels // 2)) == 255
        assert alpha.getpixel((0, 0)) == 0


def test_static_holds_only_flat_png_files_as_appinspect_allows(app: Path) -> None:
    entries = list((app / "static").iterdir())
    assert {p.name for p in entries} == {name for name, _, _ in ICONS}
    assert all(p.is_file() and p.suffix == ".png" for p in entries)


def test_icon_drawing_is_reproducible_and_alt_differs() -> None:
    assert draw_icon(36, dark=False).tobytes() == draw_icon(36, dark=False).tobytes()
    assert draw_icon(36, dark=False).tobytes() != draw_icon(36, dark=True).tobytes()
