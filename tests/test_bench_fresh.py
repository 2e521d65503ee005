"""The bench's fresh-interpreter import measurements: each run is one real import each way,
and the bytecode runs leave nothing behind in the repository."""

from __future__ import annotations

from pathlib import Path

from bench.fresh import ROOT, measure_import_ms


def _bytecode_in_repo() -> set[Path]:
    """The caches the handler's import would write beside its own modules."""
    return {path for package in ("transform", "shared") for path in (ROOT / package).rglob("*.pyc")}


def test_each_run_gives_one_time_each_way_and_caches_outside_the_repository() -> None:
    before = _bytecode_in_repo()
    times = measure_import_ms(runs=2)
    assert len(times.source) == len(times.bytecode) == 2
    assert all(ms > 0 for ms in times.source + times.bytecode)
    assert _bytecode_in_repo() == before
