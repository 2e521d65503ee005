"""Response-action records from the responder: one ``aws:iot:response`` event per action."""

from __future__ import annotations

from typing import Any

from transform.context import RecordContext
from transform.decoders.common import check_document
from transform.sourcetypes import RESPONSE

KIND = "response"


def decode(doc: dict[str, Any], ctx: RecordContext, *, source: str | None = None) -> None:
    if not check_document(ctx, doc, KIND):
        return
    fields = {"action": doc["action"], "status": doc["status"]}
    thing = doc["target"].get("thingName")
    if thing:
        doc["thing"] = thing
        fields["thing"] = thing
    when = doc.get("completedAt", doc["requestedAt"])
    ctx.emit(RESPONSE, doc, when=when, host=thing, source=source, fields=fields)
