"""detections/detection.schema.json: the data sources a detection may name are the transform's.

The schema is hand-written (contentctl-style, read by the detection tests), so its `data_source`
list is pinned here to transform/sourcetypes.py, the vocabulary the app's props are held to.
"""

from __future__ import annotations

import json

from appbuild.build_app import DETECTIONS_DIR
from transform.sourcetypes import ALL_SOURCETYPES

SCHEMA = json.loads((DETECTIONS_DIR / "detection.schema.json").read_text(encoding="utf-8"))


def test_data_sources_are_exactly_the_transforms_sourcetypes() -> None:
    enum = SCHEMA["properties"]["data_source"]["items"]["enum"]
    assert len(enum) == len(set(enum)), "a data source is listed twice"
    assert set(enum) == ALL_SOURCETYPES
