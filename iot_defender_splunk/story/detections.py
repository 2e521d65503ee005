"""The app's detections an incident targets, read from detections/<stem>.yml, and what their
rules would alert on when applied locally (``rules.OFFLINE_RULES``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from iot_defender_splunk.story import rules

DETECTIONS_DIR = rules.REPO / "detections"


class SourcesMissingError(Exception):
    """The demo runs in a checkout of the repository: it reads the app's detections there."""


@dataclass(frozen=True)
class Detection:
    stem: str
    name: str  # the saved search's name in the app
    schedule: dict[str, Any]

    def would_fire(self, events: Sequence[dict[str, Any]], end: float) -> set[str] | None:
        """What its rule, applied locally over its schedule window ending at ``end``, alerts
        on (things, addresses or metrics); None when the demo has no local reading of it."""
        rule = rules.OFFLINE_RULES.get(self.stem)
        return None if rule is None else rule(events, rules.schedule_window(self.schedule, end))


@cache
def detection(stem: str) -> Detection:
    path = DETECTIONS_DIR / f"{stem}.yml"
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourcesMissingError(
            f"no {path.name} in {DETECTIONS_DIR.parent.name}/detections: the demo reads the app's "
            "detections from a checkout of the repository (make demo)"
        ) from None
    return Detection(stem, str(spec["name"]), dict(spec["schedule"]))
