"""Inventory records from the inventory collector: one ``aws:iot:thing`` event per thing.

The event is the thing document itself (DescribeThing / fleet-index field names) plus when and
how it was collected, so the app can build its enrichment lookup straight from it.
"""

from __future__ import annotations

from typing import Any

from transform.context import RecordContext
from transform.decoders.common import check_document
from transform.sourcetypes import THING

KIND = "thing"


def decode(doc: dict[str, Any], ctx: RecordContext, *, source: str | None = None) -> None:
    if not check_document(ctx, doc, KIND):
        return
    document: dict[str, Any] = doc["thing"]
    name = document["thingName"]
    event = {**document, "collectedAt": doc["collectedAt"], "thing": name}
    if "collector" in doc:
        event["collector"] = doc["collector"]
    fields = {"thing": name}
    if thing_type := document.get("thingTypeName"):
        fields["thing_type"] = thing_type
    ctx.emit(THING, event, when=doc["collectedAt"], host=name, source=source, fields=fields)
