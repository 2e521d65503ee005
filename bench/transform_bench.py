"""Throughput, memory and cold-start figures for the Firehose transform Lambda.

Run from the repository root: ``python -m bench.transform_bench`` (``make bench``). It compares
``transform.handler.lambda_handler`` with a naive baseline shaped like the public sample
(bench.naive), on deterministic batches just under 1, 3 and 6 MB of simulated messages
(bench.inputs), and prints MET/MISSED per target. It always exits 0: a missed target is a
finding to read, not a broken build.

Internal modes, each run in a fresh interpreter so one case cannot colour another:
``--child KIND SIZE`` (peak RSS of one call), ``--first-call`` (cold first-call cost) and
``--profile KIND SIZE`` (cProfile of one warm call, for diagnosis by hand).
"""

from __future__ import annotations

import argparse
import time

from bench import license_bytes, report
from bench.fresh import (
    child_json,
    child_main,
    first_call_main,
    measure_import_ms,
    measure_rss,
    profile_main,
)
from bench.inputs import KINDS, SIZES, Batch, build_batch
from bench.timing import measure_case


def bench_main() -> None:
    """Everything, in one run; prints MET/MISSED and returns normally either way.

    The fresh-interpreter measurements run first, while this process is still small.
    """
    report.print_header()
    rss = {f"{kind} {size}": measure_rss(kind, size) for kind in KINDS for size in SIZES}
    import_ms = measure_import_ms()
    first_call = child_json(["-m", "bench.transform_bench", "--first-call"])
    batches: list[Batch] = []
    build_seconds: dict[str, float] = {}
    for kind in KINDS:
        for size in SIZES:
            start = time.perf_counter()
            batches.append(build_batch(kind, size))
            build_seconds[f"{kind} {size}"] = time.perf_counter() - start
    report.print_inputs(batches, build_seconds)
    cases = [measure_case(batch) for batch in batches]
    report.print_throughput(cases)
    licensed = license_bytes.measure(batches)
    license_bytes.print_license_bytes(licensed)
    report.print_rss(rss)
    report.print_cold_start(import_ms, first_call)
    report.print_validation(batches[0])
    report.print_targets(cases, import_ms.source, rss)
    license_bytes.print_license_targets(licensed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--child", nargs=2, metavar=("KIND", "SIZE"))
    modes.add_argument("--profile", nargs=2, metavar=("KIND", "SIZE"))
    modes.add_argument("--first-call", action="store_true")
    args = parser.parse_args(argv)
    if args.child:
        child_main(*args.child)
    elif args.profile:
        profile_main(*args.profile)
    elif args.first_call:
        first_call_main()
    else:
        bench_main()


if __name__ == "__main__":
    main()
