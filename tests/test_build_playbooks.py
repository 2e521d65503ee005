"""appbuild/build_playbooks.py: one importable .tgz per playbook, one clear line on a problem."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

from appbuild import build_playbooks
from tests.soar_playbooks import NAMES, PLAYBOOKS_DIR


def test_each_playbook_becomes_an_archive_of_its_export(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert build_playbooks.main(["--output", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.tgz" for name in NAMES]
    assert capsys.readouterr().out.split() == [str(tmp_path / f"{name}.tgz") for name in NAMES]
    for name in NAMES:
        with tarfile.open(tmp_path / f"{name}.tgz", "r:gz") as archive:
            members = archive.getmembers()
            assert [m.name for m in members] == [f"{name}.json", f"{name}.py"]
            for member in members:
                assert member.isfile()
                assert (member.mode, member.uid, member.gid, member.mtime) == (0o644, 0, 0, 0)
                extracted = archive.extractfile(member)
                assert extracted is not None
                assert extracted.read() == (PLAYBOOKS_DIR / member.name).read_bytes()


def test_archives_are_reproducible(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1764576000")
    first, second = tmp_path / "first", tmp_path / "second"
    assert build_playbooks.main(["--output", str(first)]) == 0
    assert build_playbooks.main(["--output", str(second)]) == 0
    for name in NAMES:
        archive = (first / f"{name}.tgz").read_bytes()
        assert archive == (second / f"{name}.tgz").read_bytes()
    with tarfile.open(first / f"{NAMES[0]}.tgz", "r:gz") as archive:
        assert {m.mtime for m in archive.getmembers()} == {1764576000}


def test_help_names_the_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_playbooks.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--source" in out
    assert "--output" in out


def _source(tmp_path: Path) -> Path:
    source = tmp_path / "playbooks"
    shutil.copytree(PLAYBOOKS_DIR, source)
    return source


def _breaks(source: Path, case: str) -> str:
    """Breaks one copied playbook (not the first) one way; returns the line the tool prints."""
    name = NAMES[1]
    if case == "no-code":
        (source / f"{name}.py").unlink()
        return f"build_playbooks: {name}: {name}.py is missing in {source}"
    if case == "no-export":
        for path in source.glob("*.json"):
            path.unlink()
        return f"build_playbooks: no playbook (<Name>.json) in {source}"
    if case == "bad-json":
        (source / f"{name}.json").write_text('{"coa": ', encoding="utf-8")
        return (
            f"build_playbooks: {name}.json is not JSON: Expecting value: line 1 column 9 (char 8)"
        )
    if case == "not-an-export":
        (source / f"{name}.json").write_text('{"coa": {}}', encoding="utf-8")
        return f"build_playbooks: {name}.json is not a playbook export (no coa.data.nodes)"
    if case == "bad-python":
        (source / f"{name}.py").write_text("def on_start(container)\n", encoding="utf-8")
        return f"build_playbooks: {name}.py line 1: expected ':'"
    assert case == "bad-name"
    for suffix in (".json", ".py"):
        (source / f"{name}{suffix}").rename(source / f"iot_playbook{suffix}")
    return (
        "build_playbooks: iot_playbook: playbook names are Title_Case words joined by underscores"
    )


@pytest.mark.parametrize(
    "case", ["no-code", "no-export", "bad-json", "not-an-export", "bad-python", "bad-name"]
)
def test_a_broken_playbook_stops_the_build_with_one_line(tmp_path, capsys, case):
    source = _source(tmp_path)
    expected = _breaks(source, case)
    output = tmp_path / "out"
    assert build_playbooks.main(["--source", str(source), "--output", str(output)]) == 1
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", expected + "\n")
    assert not output.exists(), "nothing is written unless every playbook can be packaged"


def test_a_missing_source_directory_is_one_line(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert build_playbooks.main(["--source", str(missing), "--output", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"build_playbooks: {missing} is not a directory\n"
