"""The mutation report: the score per module from mutmut's results, what is still alive, and
the equivalent mutants' list kept honest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools.mutation_report import main

# mutmut's exit codes, as its results store them.
KILLED, SURVIVED, NO_TESTS, TIMEOUT, NOT_RUN = 1, 0, 33, 36, None


def _results(mutants: Path, module: str, exit_codes: dict[str, int | None]) -> None:
    """A ``<module>.meta`` file as mutmut 3.8 writes one per mutated module."""
    meta = mutants / f"{module}.meta"
    meta.parent.mkdir(parents=True, exist_ok=True)
    dotted = module.removesuffix(".py").replace("/", ".")
    document = {
        "exit_code_by_key": {f"{dotted}.{name}": code for name, code in exit_codes.items()},
        "hash_by_function_name": {},
        "type_check_error_by_key": {},
        "durations_by_key": {},
        "estimated_durations_by_key": {},
    }
    meta.write_text(json.dumps(document, indent=4), encoding="utf-8")


def _pyproject(tmp_path: Path, equivalent: dict[str, str]) -> Path:
    lines = ["[tool.mutmut]", 'source_paths = ["transform"]', "", "[tool.mutmut.equivalent]"]
    lines += [f"{json.dumps(name)} = {json.dumps(why)}" for name, why in equivalent.items()]
    path = tmp_path / "pyproject.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _report(tmp_path: Path, *extra: str) -> int:
    paths = [
        "--mutants",
        str(tmp_path / "mutants"),
        "--pyproject",
        str(tmp_path / "pyproject.toml"),
    ]
    return main([*paths, *extra])


def _row(out: str, module: str) -> list[str]:
    (line,) = [line for line in out.splitlines() if line.startswith(module + " ")]
    return line.split()


@pytest.fixture
def batch_results(tmp_path: Path) -> Path:
    """transform/batch.py: 3 killed, 1 timed out, 2 survived (one of them equivalent)."""
    codes: dict[str, int | None] = {
        "x__json_length__mutmut_1": KILLED,
        "x__json_length__mutmut_2": KILLED,
        "x__json_length__mutmut_10": SURVIVED,
        "x__json_length__mutmut_9": SURVIVED,
        "x__slices__mutmut_1": KILLED,
        "x__slices__mutmut_2": TIMEOUT,
    }
    _results(tmp_path / "mutants", "transform/batch.py", codes)
    return _pyproject(tmp_path, {"transform.batch.x__json_length__mutmut_9": "same length"})


@pytest.mark.usefixtures("batch_results")
def test_the_score_counts_timeouts_as_detected_and_leaves_equivalents_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _report(tmp_path) == 0

    out = capsys.readouterr().out
    # mutants, detected, equivalent, alive, score: 4 of the 5 that could be detected.
    assert _row(out, "transform/batch.py")[1:] == ["6", "4", "1", "1", "80.0%"]
    alive = out.split("alive in transform/batch.py", 1)[1].split()
    assert "transform.batch.x__json_length__mutmut_10" in alive
    assert "transform.batch.x__json_length__mutmut_9" not in out.split("alive in", 1)[1]


def test_mutants_not_run_yet_are_left_out_of_the_score_and_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An interrupted run still gives a true figure for what did run."""
    codes = {"x_tag__mutmut_1": KILLED, "x_tag__mutmut_2": NOT_RUN, "x_untag__mutmut_1": NO_TESTS}
    _results(tmp_path / "mutants", "transform/reingest.py", codes)
    _pyproject(tmp_path, {})

    assert _report(tmp_path) == 0

    row = _row(capsys.readouterr().out, "transform/reingest.py")
    assert row[1:6] == ["3", "1", "0", "1", "50.0%"]
    assert " ".join(row[6:]) == "(1 not run)"


@pytest.mark.usefixtures("batch_results")
def test_an_equivalent_that_no_longer_survives_is_called_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """mutmut renumbers a function's mutants when its code changes: a stale entry would
    otherwise hide a real survivor under an old name's reason."""
    _pyproject(tmp_path, {"transform.batch.x__json_length__mutmut_2": "killed now"})

    _report(tmp_path)

    stale = capsys.readouterr().out.split("listed as equivalent but not surviving", 1)[1]
    assert "transform.batch.x__json_length__mutmut_2" in stale


@pytest.mark.usefixtures("batch_results")
@pytest.mark.parametrize(("threshold", "code"), [("80", 0), ("80.1", 1)])
def test_fail_under_fails_when_a_module_scores_below_it(
    tmp_path: Path, threshold: str, code: int
) -> None:
    assert _report(tmp_path, "--fail-under", threshold) == code


@pytest.mark.parametrize(
    ("meta_text", "says"),
    [
        (None, "no mutmut results under"),
        ("{not json", "cannot read mutmut results"),
        ('{"durations_by_key": {}}', "cannot read mutmut results"),
    ],
    ids=["no-run-yet", "damaged", "not-mutmut-results"],
)
def test_unreadable_results_fail_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], meta_text: str | None, says: str
) -> None:
    _pyproject(tmp_path, {})
    (tmp_path / "mutants" / "transform").mkdir(parents=True)
    if meta_text is not None:
        (tmp_path / "mutants" / "transform" / "batch.py.meta").write_text(meta_text)

    assert _report(tmp_path) == 2

    err = capsys.readouterr().err
    assert err.startswith(f"mutation_report: {says}")
    assert err.count("\n") == 1


def test_a_malformed_equivalent_list_fails_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.mutmut]\nequivalent = ['a name, no why']\n")

    assert _report(tmp_path) == 2

    assert capsys.readouterr().err == (
        f"mutation_report: {tmp_path / 'pyproject.toml'}: "
        "[tool.mutmut.equivalent] maps mutant names to reasons\n"
    )


def test_help_says_what_it_reads(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--mutants" in out
    assert "--fail-under" in out


def test_an_equivalent_not_run_yet_is_not_called_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _results(tmp_path / "mutants", "transform/reingest.py", {"x_tag__mutmut_10": NOT_RUN})
    _pyproject(tmp_path, {"transform.reingest.x_tag__mutmut_10": "ascii is ASCII"})

    _report(tmp_path)

    assert "not surviving" not in capsys.readouterr().out
