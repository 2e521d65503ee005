"""`python -m appbuild.detection_data [NAME ...]` rewrites `detections/data/*.ndjson` (or the
named datasets): each dataset's records (appbuild.datasets) buffered as Firehose buffers them,
through the real transform, its HEC events in time order."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from appbuild.datasets import DATASETS
from appbuild.datasets.cast import PLANT_NAT, PUMPS
from appbuild.datasets.story import REFERENCE_TIME
from iot_defender_splunk.simulator.delivery import firehose_batches
from iot_defender_splunk.simulator.runner import DEFAULT_INDEX, run_transform

__all__ = ["DATASETS", "PLANT_NAT", "PUMPS", "REFERENCE_TIME", "build", "dataset_path", "main"]

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = REPO / "detections" / "data"


class DatasetError(RuntimeError):
    """The transform did not deliver every record of a dataset."""


def build(name: str) -> bytes:
    """One dataset's NDJSON: the handler's events in time order (the app's index pinned, so
    datasets do not depend on the environment of whoever builds them)."""
    run = run_transform(firehose_batches(DATASETS[name]().records), index=DEFAULT_INDEX)
    results = run.results()
    if set(results) != {"Ok"}:
        raise DatasetError(f"{name}: records were not all Ok: {dict(results)}")
    lines = sorted(run.events, key=lambda line: float(json.loads(line)["time"]))
    return b"".join(line + b"\n" for line in lines)


def dataset_path(name: str) -> Path:
    return DATA_DIR / f"{name}.ndjson"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m appbuild.detection_data",
        description="Rewrite detections/data/*.ndjson (all datasets, or the named ones).",
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"of: {', '.join(sorted(DATASETS))}"
    )
    names = parser.parse_args(argv).names or sorted(DATASETS)
    unknown = sorted(set(names) - set(DATASETS))
    if unknown:
        parser.error(f"unknown dataset(s): {', '.join(unknown)}")
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    for name in names:
        data = build(name)
        dataset_path(name).write_bytes(data)
        events = data.count(b"\n")
        print(f"{dataset_path(name).relative_to(REPO)}: {events} events, {len(data):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
