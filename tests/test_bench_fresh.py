"""The bench's fresh-interpreter measurements: each run is one real import, and the bytecode
run leaves nothing behind in the repository."""

from __future__ import annotations

from pathlib import Path

from bench.fresh import ROOT, measure_compiled_import_ms, measure_import_ms


def _bytecode_in_repo() -> set[Path]:
    """The caches the handler's import would write beside its own modules."""
    return {path for package in ("transform", "shared") for path in (ROOT / package).rglob("*.pyc")}


def test_each_import_run_gives_one_time() -> None:
    times = measure_import_ms(runs=2)
    assert len(times) == 2
    assert all(ms > 0 for ms in times)


def test_the_bytecode_runs_cache_outside_the_repository() -> None:
    before = _bytecode_in_repo()
    times = measure_compiled_import_ms(runs=2)
    assert len(times) == 2
    assert all(ms > 0 for ms in times)
    assert _bytecode_in_repo() == before
