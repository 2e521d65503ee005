"""The mutation score per module and the mutants still alive, from mutmut's results.

`make mutation` runs mutmut, then this. mutmut keeps one ``<module>.meta`` file per mutated
module under ``mutants/``; a mutant the tests detected (killed, timed out) counts for the score,
one they missed (survived, or no test reached it) against it, unless pyproject's
``[tool.mutmut.equivalent]`` lists it with why it cannot change behaviour. Mutants not run yet
(an interrupted run) are left out of the score and counted apart.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from mutmut.stats import status_by_exit_code

DETECTED = frozenset({"killed", "timeout", "caught by type check", "segfault"})
MISSED = frozenset({"survived", "no tests", "suspicious"})
NOT_RUN = "not checked"


class ReportError(Exception):
    """Results that cannot be read: said in one line."""


@dataclass
class ModuleResult:
    module: str
    statuses: Counter[str] = field(default_factory=Counter)
    missed: set[str] = field(default_factory=set)  # equivalent ones too
    not_run: set[str] = field(default_factory=set)
    alive: list[str] = field(default_factory=list)  # missed and not listed as equivalent

    @property
    def equivalent(self) -> int:
        return len(self.missed) - len(self.alive)

    @property
    def detected(self) -> int:
        return sum(self.statuses[status] for status in DETECTED)

    @property
    def score(self) -> float | None:
        """Detected share of the mutants that could have been detected; None if none ran."""
        judged = self.detected + len(self.alive)
        return 100.0 * self.detected / judged if judged else None


def equivalent_mutants(pyproject: Path) -> dict[str, str]:
    """Mutant name to why it is equivalent, from ``[tool.mutmut.equivalent]``."""
    try:
        config = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ReportError(f"cannot read {pyproject}: {error}") from error
    listed = config.get("tool", {}).get("mutmut", {}).get("equivalent", {})
    if not isinstance(listed, dict) or not all(isinstance(v, str) for v in listed.values()):
        raise ReportError(f"{pyproject}: [tool.mutmut.equivalent] maps mutant names to reasons")
    return listed


def module_results(mutants_dir: Path, equivalent: dict[str, str]) -> list[ModuleResult]:
    """One result per mutated module, in path order."""
    metas = sorted(mutants_dir.rglob("*.py.meta"))
    if not metas:
        raise ReportError(f"no mutmut results under {mutants_dir}: run `make mutation` first")
    return [_module_result(meta, mutants_dir, equivalent) for meta in metas]


def _module_result(meta: Path, mutants_dir: Path, equivalent: dict[str, str]) -> ModuleResult:
    try:
        exit_codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ReportError(f"cannot read mutmut results {meta}: {error}") from error
    result = ModuleResult(str(meta.relative_to(mutants_dir)).removesuffix(".meta"))
    for name, exit_code in sorted(exit_codes.items(), key=lambda item: _natural(item[0])):
        status = status_by_exit_code[exit_code]
        result.statuses[status] += 1
        if status == NOT_RUN:
            result.not_run.add(name)
        if status in MISSED:
            result.missed.add(name)
            if name not in equivalent:
                result.alive.append(name)
    return result


def _natural(name: str) -> tuple[str, int]:
    """mutant_10 after mutant_9."""
    stem, _, number = name.rpartition("_")
    return (stem, int(number)) if number.isdigit() else (name, 0)


def stale_equivalents(results: list[ModuleResult], equivalent: dict[str, str]) -> list[str]:
    """Listed equivalents of the modules here that did not survive (and are not still to
    run): killed, or renumbered (mutmut numbers a function's mutants afresh when its code
    changes), so the list is out of date."""
    modules = {result.module.removesuffix(".py").replace("/", ".") for result in results}
    pending = {name for result in results for name in result.missed | result.not_run}
    return sorted(
        name for name in equivalent if _module_of(name) in modules and name not in pending
    )


def _module_of(mutant: str) -> str:
    """'transform.batch.x__json_length__mutmut_3' -> 'transform.batch'."""
    return mutant.rpartition(".x")[0]


def render(results: list[ModuleResult], equivalent: dict[str, str]) -> str:
    lines = [f"{'module':<40} {'mutants':>7} {'killed':>7} {'equiv':>6} {'alive':>6} {'score':>7}"]
    for result in results:
        score = "-" if result.score is None else f"{result.score:.1f}%"
        not_run = result.statuses[NOT_RUN]
        lines.append(
            f"{result.module:<40} {result.statuses.total():>7} {result.detected:>7} "
            f"{result.equivalent:>6} {len(result.alive):>6} {score:>7}"
            + (f"  ({not_run} not run)" if not_run else "")
        )
    for result in results:
        if result.alive:
            lines.append(f"\nalive in {result.module} (`mutmut show <name>` for the change):")
            lines.extend(f"  {name}" for name in result.alive)
    stale = stale_equivalents(results, equivalent)
    if stale:
        lines.append("\nlisted as equivalent but not surviving (update [tool.mutmut.equivalent]):")
        lines.extend(f"  {name}" for name in stale)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.mutation_report", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--mutants",
        type=Path,
        default=Path("mutants"),
        help="mutmut's working directory (default: %(default)s)",
    )
    parser.add_argument(
        "--pyproject",
        type=Path,
        default=Path("pyproject.toml"),
        help="where [tool.mutmut.equivalent] lists the equivalent mutants (default: %(default)s)",
    )
    parser.add_argument(
        "--fail-under",
        type=float,
        metavar="PERCENT",
        help="exit 1 if any module scores below this (default: never)",
    )
    args = parser.parse_args(argv)
    try:
        equivalent = equivalent_mutants(args.pyproject)
        results = module_results(args.mutants, equivalent)
    except ReportError as error:
        print(f"mutation_report: {error}", file=sys.stderr)
        return 2
    print(render(results, equivalent))
    below = [
        r for r in results if args.fail_under is not None and (r.score or 0.0) < args.fail_under
    ]
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
