"""Measurements that need a fresh interpreter: peak RSS of one call, import time, first call.

The parent starts each child before it builds its own batches, so its memory cannot colour
the child's figures; ``bench.transform_bench`` dispatches the child modes to this module.
"""

from __future__ import annotations

import cProfile
import gc
import json
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bench.inputs import Batch, build_batch, tiny_event
from bench.timing import run_ours, timed
from iot_defender_splunk.local_lambda import quiet_stdout
from transform import validation

Doc = dict[str, Any]

IMPORT_RUNS: Final = 9
ROOT: Final = Path(__file__).resolve().parent.parent


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
    seconds, response, reput = timed(run_ours, event)
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


def _run_python(
    args: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """This interpreter, from the repository root, so ``transform`` imports as in the tests."""
    command = [sys.executable, *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)  # noqa: S603 - our own interpreter and module


def child_json(args: list[str]) -> Doc | None:
    result = _run_python(args)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        print(f"  child {' '.join(args)} failed ({result.returncode}): {result.stderr[-500:]}")
        return None
    report: Doc = json.loads(lines[-1])
    return report


def measure_rss(kind: str, size: str) -> Doc | None:
    return child_json(["-m", "bench.transform_bench", "--child", kind, size])


_IMPORT_SNIPPET: Final = (
    "import time; t = time.perf_counter(); import transform.handler; print(time.perf_counter() - t)"
)


@dataclass(frozen=True)
class ImportTimes:
    """Import of the handler in fresh interpreters, two ways, run by run in turn so a burst of
    load on a shared machine slows both alike.

    ``source``: with this environment's bytecode settings (PYTHONDONTWRITEBYTECODE: the repo's
    own modules compiled from source every time, as in a Lambda artefact with no .pyc files).
    ``bytecode``: every module's bytecode cached first (a private PYTHONPYCACHEPREFIX, one
    unmeasured run), as Lambda would load an artefact built with compiled .pyc files.
    """

    source: list[float]
    bytecode: list[float]


def measure_import_ms(runs: int = IMPORT_RUNS) -> ImportTimes:
    times = ImportTimes(source=[], bytecode=[])
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as cache:
        compiled = {**os.environ, "PYTHONPYCACHEPREFIX": cache}
        compiled.pop("PYTHONDONTWRITEBYTECODE", None)
        _import_ms(compiled)
        for _ in range(runs):
            times.source.extend(_import_ms(None))
            times.bytecode.extend(_import_ms(compiled))
    return times


def _import_ms(env: dict[str, str] | None) -> list[float]:
    """One fresh interpreter's import time: one figure, or none if the child failed."""
    result = _run_python(["-c", _IMPORT_SNIPPET], env=env)
    if result.returncode != 0:
        print(f"  import child failed: {result.stderr[-500:]}")
        return []
    return [float(result.stdout.strip().splitlines()[-1]) * 1000]


def first_call_main() -> None:
    """First versus second call on a tiny batch, then the schema compiles alone."""
    event = tiny_event()
    first, _, _ = timed(run_ours, event)
    second, _, _ = timed(run_ours, event)
    validation.checker.cache_clear()
    start = time.perf_counter()
    for name in ("metrics_export", "device_report", "sns", "audit_notification"):
        validation.checker(name)
    compile_seconds = time.perf_counter() - start
    print(json.dumps({"first": first, "second": second, "compile": compile_seconds}))


def profile_main(kind: str, size: str) -> None:
    """cProfile one warm call; our code and powertools by cumulative time, then all by own time."""
    batch = build_batch(kind, size)
    timed(run_ours, batch.event)
    profiler = cProfile.Profile()
    with quiet_stdout():
        profiler.runcall(run_ours, batch.event)
    stats = pstats.Stats(profiler, stream=sys.stdout)
    print(f"cProfile, one warm call, {kind} {size} ({batch.records} records)")
    stats.sort_stats("cumulative").print_stats(r"transform/|aws_lambda_powertools", 15)
    stats.sort_stats("tottime").print_stats(15)
