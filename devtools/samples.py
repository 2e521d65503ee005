"""The bundled sample AWS messages (samples/<kind>/), one realistic message per file.

Each file is one case, named for what it shows. Tests, docs and the datasets read them through
here, so every reader turns a sample into the record its producer puts into Firehose the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

from iot_defender_splunk.simulator.delivery import (
    GZIPPED_KINDS,
    RULE_ROUTES,
    gzipped,
    published_rule_record,
)

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"
# Folders of samples/ holding messages as producers put them into Firehose. The others
# (audit_collector, inventory_collector, custom_resource) hold what other Lambdas receive.
TRANSFORM_KINDS = (
    "audit_finding",
    "audit_notification",
    "cloudwatch_metric_stream",
    "device_report",
    "iot_logs",
    "lifecycle",
    "metrics_export",
    "response",
    "thing",
    "violation",
)


def sample_paths(kind: str | None = None) -> list[Path]:
    """Every transform input sample, or those of one input kind (a folder under samples/)."""
    kinds = (kind,) if kind else TRANSFORM_KINDS
    return sorted(
        path for name in kinds for path in (SAMPLES_DIR / name).iterdir() if path.is_file()
    )


def record_bytes(path: Path) -> bytes:
    """The bytes the producer puts into Firehose for this sample."""
    data = path.read_bytes()
    kind = path.parent.name
    if kind in GZIPPED_KINDS:
        return gzipped(data)
    route = RULE_ROUTES.get(kind)
    if route is None:
        return data
    return published_rule_record(route, json.loads(data))
