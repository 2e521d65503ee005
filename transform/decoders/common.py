"""Helpers every decoder uses."""

from __future__ import annotations

from typing import Any, Protocol

from transform.context import RecordContext
from transform.validation import checker


class Decoder(Protocol):
    """Decodes one JSON document into events on ``ctx``; ``source`` is an AWS-set origin."""

    def __call__(
        self, doc: dict[str, Any], ctx: RecordContext, *, source: str | None = None
    ) -> None: ...


def valid_items(
    ctx: RecordContext,
    doc: dict[str, Any],
    *,
    kind: str,
    key: str,
    item: str,
    envelope: str = "envelope",
    whole: str | None = None,
) -> list[Any] | None:
    """The list ``doc[key]`` with invalid items reported as unparsed and left out.

    One compiled check covers the whole document in the common all-valid case; the items are
    checked one by one only to isolate the bad ones. None when the envelope itself is invalid.
    """
    if checker(kind, whole)(doc) is None:
        items: list[Any] = doc[key]
        return items
    error = checker(kind, envelope)(doc)
    if error is not None:
        ctx.unparsed("schema_violation", f"{kind}: {error}", kind=kind)
        return None
    check_item = checker(kind, item)
    good = []
    for position, candidate in enumerate(doc[key]):
        error = check_item(candidate)
        if error is None:
            good.append(candidate)
        else:
            reason = f"{kind}: {key}[{position}]: {error}"
            ctx.unparsed("schema_violation", reason, candidate, kind=kind)
    return good


def check_document(ctx: RecordContext, doc: dict[str, Any], kind: str) -> bool:
    """True when ``doc`` matches its schema; otherwise the record is reported as unparsed."""
    error = checker(kind)(doc)
    if error is None:
        return True
    ctx.unparsed("schema_violation", f"{kind}: {error}", kind=kind)
    return False
