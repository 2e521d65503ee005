"""The detection datasets (detections/data/*.ndjson): HEC events the real transform made."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@functools.cache
def dataset_events(relative: str) -> tuple[dict[str, Any], ...]:
    """The events of one dataset, by its repository-relative path."""
    lines = (REPO / relative).read_text(encoding="utf-8").splitlines()
    return tuple(json.loads(line) for line in lines)
