"""Throughput, memory and cold-start figures for the Firehose transform Lambda.

Run from the repository root: ``python -m bench.transform_bench`` (``make bench``). It compares
``transform.handler.lambda_handler`` with a naive baseline shaped like the public sample
(bench.naive), on deterministic batches just under 3 MB and 6 MB of simulated messages
(bench.inputs), and prints MET/MISSED per target. It always exits 0: a missed target is a
finding to read, not a broken build.

Internal modes, each run in a fresh interpreter so one case cannot colour another:
``--child KIND SIZE`` (peak RSS of one call), ``--first-call`` (cold first-call cost) and
``--profile KIND SIZE`` (cProfile of one warm call, for diagnosis by hand).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import cProfile
import dataclasses
import gc
import json
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Final, cast

from aws_lambda_powertools.utilities.typing import LambdaContext

from bench.inputs import KINDS, SEED, SIZES, Batch, build_batch, tiny_event
from bench.naive import naive_events, naive_handler
from iot_defender_splunk.local_lambda import LocalLambdaContext
from tests.fakes import FakeFirehose
from transform import handler, validation

Doc = dict[str, Any]

REPEATS: Final = 9
IMPORT_RUNS: Final = 5
LAMBDA_LIMIT: Final = 6_000_000  # request and response payload limit the transform works to
TARGET_RATIO: Final = 2.0
TARGET_IMPORT_MS: Final = 300.0
TARGET_RSS_MIB: Final = 150.0
MB: Final = 1_000_000

ROOT: Final = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------------
# The two implementations under test.
# ---------------------------------------------------------------------------------------------


def run_ours(event: Doc) -> tuple[Doc, int]:
    """Our handler as Lambda calls it; re-ingest goes to the fake stream. Returns re-put count."""
    fake = FakeFirehose(keep=False)  # a healthy stream that only counts: no memory kept
    handler._firehose_client = fake
    context = cast(LambdaContext, LocalLambdaContext())
    response: Doc = handler.lambda_handler(event, context)
    return response, fake.accepted_count


def run_ours_uncapped(event: Doc) -> tuple[Doc, int]:
    """Our handler with the response limit lifted: every record fully transformed in one call.

    This is the amortised cost per record: under the real limit, re-ingested records are
    transformed in a later invocation instead, so the work is the same, only deferred.
    """
    capped = handler.SETTINGS
    handler.SETTINGS = dataclasses.replace(capped, response_limit_bytes=10**12)
    try:
        return run_ours(event)
    finally:
        handler.SETTINGS = capped


# ---------------------------------------------------------------------------------------------
# Measuring.
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Send fd 1 to /dev/null: powertools' logger holds its own reference to stdout."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


Runner = Callable[[Doc], tuple[Doc, int]]


def _timed(run: Runner, event: Doc) -> tuple[float, Doc, int]:
    gc.collect()
    with _quiet():
        start = time.perf_counter()
        response, reput = run(event)
        elapsed = time.perf_counter() - start
    return elapsed, response, reput


def best_of(run: Runner, event: Doc, repeats: int = REPEATS) -> tuple[float, Doc, int]:
    """Best wall-clock of ``repeats`` calls, with the last call's response and re-put count."""
    best = float("inf")
    response: Doc = {}
    reput = 0
    for _ in range(repeats):
        elapsed, response, reput = _timed(run, event)
        best = min(best, elapsed)
    return best, response, reput


@dataclass(frozen=True)
class Outcome:
    seconds: float
    ok: int
    dropped: int
    failed: int
    reingested: int
    events: int
    response_bytes: int


def _our_events(data: bytes) -> int:
    return data.count(b"\n")  # one newline-terminated JSON object per HEC event


def summarize(seconds: float, response: Doc, reput: int, count: Callable[[bytes], int]) -> Outcome:
    """Counts from a response, outside the timed region."""
    records = response.get("records", [])
    results = [record["result"] for record in records]
    events = sum(count(base64.b64decode(r["data"])) for r in records if r["result"] == "Ok")
    return Outcome(
        seconds=seconds,
        ok=results.count("Ok"),
        dropped=results.count("Dropped"),
        failed=results.count("ProcessingFailed"),
        reingested=reput,
        events=events,
        response_bytes=len(json.dumps(response)),
    )


@dataclass(frozen=True)
class CaseResult:
    batch: Batch
    ours: Outcome
    full: Outcome
    naive: Outcome

    def rate(self, outcome: Outcome) -> float:
        """Input records answered per second (re-put records count: they are answered)."""
        return self.batch.records / outcome.seconds

    def ratio(self, *, full: bool = False) -> float:
        """Ours over naive; ``full`` compares complete transformation of every record."""
        return self.rate(self.full if full else self.ours) / self.rate(self.naive)


def measure_case(batch: Batch) -> CaseResult:
    outcomes = []
    for run, count in (
        (run_ours, _our_events),
        (run_ours_uncapped, _our_events),
        (naive_handler, naive_events),
    ):
        seconds, response, reput = best_of(run, batch.event)
        outcomes.append(summarize(seconds, response, reput, count))
        del response
    ours, full, naive = outcomes
    return CaseResult(batch=batch, ours=ours, full=full, naive=naive)


# ---------------------------------------------------------------------------------------------
# Fresh-interpreter measurements: peak RSS, import time, first call.
# ---------------------------------------------------------------------------------------------


def _maxrss_mib() -> float:
    """ru_maxrss in MiB (Lambda's 'MB'); Linux reports KiB, macOS bytes.

    On Linux it also keeps the parent's high-water mark across fork+exec, which is why the
    children are started before the parent builds its batches, and why VmHWM is preferred.
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _proc_status_mib(field: str) -> float | None:
    """VmRSS or VmHWM of this process alone, in MiB; None where /proc is unavailable."""
    try:
        lines = Path("/proc/self/status").read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return None


def _reset_peak() -> bool:
    """Restart VmHWM at the current RSS (Linux 4.0+), so building the input is not counted."""
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


def _as_lambda_receives(batch: Batch) -> tuple[bytes, Doc]:
    """The request body and its parsed event: the runtime holds both during the call."""
    body = json.dumps(batch.event).encode("utf-8")
    event: Doc = json.loads(body)
    return body, event


def child_main(kind: str, size: str) -> None:
    """Build one batch, call the handler once, print memory figures as one JSON line."""
    after_import = _proc_status_mib("VmHWM") or _maxrss_mib()
    body, event = _as_lambda_receives(build_batch(kind, size))
    gc.collect()
    after_input = _proc_status_mib("VmRSS") or _maxrss_mib()
    reset = _reset_peak()
    seconds, response, reput = _timed(run_ours, event)
    report = {
        "after_import_mib": after_import,
        "after_input_mib": after_input,
        "peak_mib": (_proc_status_mib("VmHWM") if reset else None) or _maxrss_mib(),
        "peak_method": "VmHWM since input ready" if reset else "ru_maxrss (whole run)",
        "ru_maxrss_mib": _maxrss_mib(),
        "request_bytes": len(body),
        "seconds": seconds,
        "records": len(response.get("records", [])),
        "reingested": reput,
    }
    print(json.dumps(report))


def _run_python(args: list[str]) -> subprocess.CompletedProcess[str]:
    """This interpreter, from the repository root, so ``transform`` imports as in the tests."""
    command = [sys.executable, *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603 - our own interpreter and module


def _child_json(args: list[str]) -> Doc | None:
    result = _run_python(args)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        print(f"  child {' '.join(args)} failed ({result.returncode}): {result.stderr[-500:]}")
        return None
    report: Doc = json.loads(lines[-1])
    return report


def measure_rss(kind: str, size: str) -> Doc | None:
    return _child_json(["-m", "bench.transform_bench", "--child", kind, size])


_IMPORT_SNIPPET: Final = (
    "import time; t = time.perf_counter(); import transform.handler; print(time.perf_counter() - t)"
)


def measure_import_ms(runs: int = IMPORT_RUNS) -> list[float]:
    """Import time of the handler module, each in a fresh interpreter (nothing preloaded)."""
    times = []
    for _ in range(runs):
        result = _run_python(["-c", _IMPORT_SNIPPET])
        if result.returncode == 0:
            times.append(float(result.stdout.strip().splitlines()[-1]) * 1000)
        else:
            print(f"  import child failed: {result.stderr[-500:]}")
    return times


def first_call_main() -> None:
    """First versus second call on a tiny batch, then the schema compiles alone."""
    event = tiny_event()
    first, _, _ = _timed(run_ours, event)
    second, _, _ = _timed(run_ours, event)
    validation.checker.cache_clear()
    start = time.perf_counter()
    for name in ("metrics_export", "device_report", "sns", "audit_notification"):
        validation.checker(name)
    compile_seconds = time.perf_counter() - start
    print(json.dumps({"first": first, "second": second, "compile": compile_seconds}))


def profile_main(kind: str, size: str) -> None:
    """cProfile one warm call; our code and powertools by cumulative time, then all by own time."""
    batch = build_batch(kind, size)
    _timed(run_ours, batch.event)
    profiler = cProfile.Profile()
    with _quiet():
        profiler.runcall(run_ours, batch.event)
    stats = pstats.Stats(profiler, stream=sys.stdout)
    print(f"cProfile, one warm call, {kind} {size} ({batch.records} records)")
    stats.sort_stats("cumulative").print_stats(r"transform/|aws_lambda_powertools", 15)
    stats.sort_stats("tottime").print_stats(15)


# ---------------------------------------------------------------------------------------------
# Report.
# ---------------------------------------------------------------------------------------------


def _verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def print_header() -> None:
    implementation = platform.python_implementation()
    cpus = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    print("iot-defender-splunk transform benchmark")
    print(f"python {platform.python_version()} ({implementation}), {platform.system()} ", end="")
    print(f"{platform.machine()}; CPUs: {cpus} (usable {usable})")
    packages = ("aws-lambda-powertools", "orjson", "jsonschema-rs")
    print("; ".join(f"{name} {_version(name)}" for name in packages))
    print(f"seed {SEED}; best of {REPEATS} wall-clock (perf_counter); MB = 10^6 bytes;")
    print("MB/s = decoded record bytes per second; stdout sent to /dev/null while timing")
    print()


def print_inputs(batches: list[Batch], build_seconds: dict[str, float]) -> None:
    print("Inputs (Firehose request = json.dumps of the Lambda event)")
    print(f"{'case':<24}{'records':>8}{'request bytes':>15}{'headroom':>10}", end="")
    print(f"{'decoded MB':>12}{'build s':>9}")
    for batch in batches:
        name = f"{batch.kind} {batch.size}"
        headroom = SIZES[batch.size] - batch.request_bytes
        print(f"{name:<24}{batch.records:>8,}{batch.request_bytes:>15,}{headroom:>10,}", end="")
        print(f"{batch.input_bytes / MB:>12.2f}{build_seconds[name]:>9.2f}")
    print()


def _outcome_row(label: str, case: CaseResult, outcome: Outcome, ratio: str) -> str:
    rate = case.rate(outcome)
    mbps = case.batch.input_bytes / MB / outcome.seconds
    return (
        f"{label:<24}{outcome.seconds * 1000:>9.1f}{rate:>11,.0f}{mbps:>8.1f}"
        f"{outcome.events:>9,}{outcome.ok:>7,}{outcome.dropped:>8,}{outcome.reingested:>7,}"
        f"{outcome.failed:>6,}{outcome.response_bytes:>12,}{ratio:>8}"
    )


def print_throughput(cases: list[CaseResult]) -> None:
    print(f"Throughput (best of {REPEATS}); ratio = ours/naive records/s on the same batch")
    print("  ours  = the handler as deployed: what overflows 6,000,000 bytes is re-put (Reing)")
    print("  full  = the handler with the limit lifted: every record fully transformed now,")
    print("          i.e. the amortised cost per record (re-put records are transformed later)")
    print(
        f"{'case / impl':<24}{'best ms':>9}{'records/s':>11}{'MB/s':>8}{'events':>9}{'Ok':>7}"
        f"{'Dropped':>8}{'Reing':>7}{'Fail':>6}{'resp bytes':>12}{'ratio':>8}"
    )
    for case in cases:
        print(f"{case.batch.kind} {case.batch.size}")
        print(_outcome_row("  ours", case, case.ours, f"{case.ratio():.2f}x"))
        print(_outcome_row("  full", case, case.full, f"{case.ratio(full=True):.2f}x"))
        over = "  > 6 MB limit" if case.naive.response_bytes > LAMBDA_LIMIT else ""
        print(_outcome_row("  naive", case, case.naive, "") + over)
    print("naive emits nothing for device reports (no 'metrics' list, no SNS envelope), so")
    print("those rows time decoding only; a naive response over 6 MB would fail the invocation")
    print()


def print_rss(rss: dict[str, Doc | None]) -> None:
    print("Memory: our handler, one call in a fresh interpreter per case (MiB = Lambda's 'MB')")
    print("The child holds the request body and its parsed event, as the Lambda runtime does.")
    print(
        f"{'case':<24}{'after import':>13}{'input ready':>12}{'peak RSS':>10}"
        f"{'ru_maxrss':>11}{'call ms':>9}"
    )
    methods = set()
    for name, report in rss.items():
        if report is None:
            print(f"{name:<24}{'n/a':>13}")
            continue
        methods.add(report["peak_method"])
        print(
            f"{name:<24}{report['after_import_mib']:>13.1f}{report['after_input_mib']:>12.1f}"
            f"{report['peak_mib']:>10.1f}{report['ru_maxrss_mib']:>11.1f}"
            f"{report['seconds'] * 1000:>9.1f}"
        )
    print(f"peak RSS = {', '.join(sorted(methods))}; ru_maxrss also counts input building")
    print()


def print_cold_start(import_ms: list[float], first: Doc | None) -> None:
    print(f"Cold start (fresh interpreter, {len(import_ms)} runs)")
    runs = ", ".join(f"{ms:.1f}" for ms in import_ms)
    median = f"{statistics.median(import_ms):.1f} ms" if import_ms else "n/a"
    print(f"  import transform.handler: median {median}  (runs: {runs})")
    if first is not None:
        extra = (first["first"] - first["second"]) * 1000
        print(
            f"  first call, 3 records (one per kind): {first['first'] * 1000:.1f} ms, "
            f"second {first['second'] * 1000:.1f} ms, first-call extra {extra:.1f} ms"
        )
        compile_ms = first["compile"] * 1000
        print(f"  of which schema compiles (4 checkers, timed alone): {compile_ms:.1f} ms")
    print()


def print_validation(batch: Batch) -> None:
    """The runtime validator against the oracle library, on the same export documents."""
    import jsonschema  # noqa: PLC0415 - a dev dependency, used here only

    envelopes = [json.loads(base64.b64decode(r["data"])) for r in batch.event["records"][:100]]
    docs = [json.loads(base64.b64decode(envelope["payload"])) for envelope in envelopes]
    items = sum(len(doc["metrics"]) for doc in docs)
    schema = validation.schema_for("metrics_export")
    print(f"Validation alone: {len(docs)} metrics-export documents, {items:,} metric items")
    checks = {
        "jsonschema-rs (runtime)": validation.checker("metrics_export"),
        "jsonschema (test oracle)": jsonschema.Draft7Validator(schema).is_valid,
    }
    for name, check in checks.items():
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for doc in docs:
                check(doc)
            best = min(best, time.perf_counter() - start)
        print(f"  {name:<26}{best * 1e6 / items:>8.2f} us/item")
    print()


def print_targets(
    cases: list[CaseResult], import_ms: list[float], rss: dict[str, Doc | None]
) -> None:
    print("Targets")
    for case in cases:
        if case.batch.kind == "metrics_export":
            for full, how in ((False, "as deployed"), (True, "full")):
                ratio = case.ratio(full=full)
                label = f"ratio ours/naive >= {TARGET_RATIO:.1f}x, {case.batch.size}, {how}"
                print(f"  {label:<58}{ratio:>9.2f}x  {_verdict(ratio >= TARGET_RATIO)}")
    median = statistics.median(import_ms) if import_ms else float("inf")
    label = f"import transform.handler <= {TARGET_IMPORT_MS:.0f} ms (median)"
    print(f"  {label:<58}{median:>7.1f} ms  {_verdict(median <= TARGET_IMPORT_MS)}")
    for name, report in rss.items():
        if name.endswith("6MB"):
            peak = report["peak_mib"] if report else float("inf")
            label = f"peak RSS <= {TARGET_RSS_MIB:.0f} MiB, {name}"
            print(f"  {label:<58}{peak:>6.1f} MiB  {_verdict(peak <= TARGET_RSS_MIB)}")
    largest = max(case.ours.response_bytes for case in cases)
    label = f"our response <= {LAMBDA_LIMIT:,} bytes, every case (largest)"
    print(f"  {label:<58}{largest:>10,}  {_verdict(largest <= LAMBDA_LIMIT)}")


def bench_main() -> None:
    """Everything, in one run; prints MET/MISSED and returns normally either way.

    The fresh-interpreter measurements run first, while this process is still small.
    """
    print_header()
    rss = {f"{kind} {size}": measure_rss(kind, size) for kind in KINDS for size in SIZES}
    import_ms = measure_import_ms()
    first_call = _child_json(["-m", "bench.transform_bench", "--first-call"])
    batches: list[Batch] = []
    build_seconds: dict[str, float] = {}
    for kind in KINDS:
        for size in SIZES:
            start = time.perf_counter()
            batches.append(build_batch(kind, size))
            build_seconds[f"{kind} {size}"] = time.perf_counter() - start
    print_inputs(batches, build_seconds)
    cases = [measure_case(batch) for batch in batches]
    print_throughput(cases)
    print_rss(rss)
    print_cold_start(import_ms, first_call)
    print_validation(batches[0])
    print_targets(cases, import_ms, rss)


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
