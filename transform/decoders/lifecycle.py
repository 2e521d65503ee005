"""Lifecycle (presence and subscription) events: one ``aws:iot:lifecycle`` event each."""

from __future__ import annotations

from typing import Any

from shared.names import thing_name
from transform.context import RecordContext
from transform.decoders.common import check_document
from transform.sourcetypes import LIFECYCLE

KIND = "lifecycle"


def decode(doc: dict[str, Any], ctx: RecordContext, *, source: str | None = None) -> None:
    if not check_document(ctx, doc, KIND):
        return
    fields = {"event_type": doc["eventType"]}
    thing = thing_name(doc["clientId"])
    if thing:
        doc["thing"] = thing
        fields["thing"] = thing
    ctx.emit(LIFECYCLE, doc, when=doc["timestamp"], host=thing, source=source, fields=fields)
