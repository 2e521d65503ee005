"""Helpers every decoder uses."""

from __future__ import annotations

from typing import Any, Protocol

import orjson

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


def json_object(
    data: bytes, ctx: RecordContext, *, kind: str | None = None
) -> dict[str, Any] | None:
    """``data`` parsed as a JSON object; anything else is reported as unparsed and gives None."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        prefix = f"{kind}: " if kind else ""
        if not data.strip():
            ctx.unparsed("empty", f"{prefix}record is empty", kind=kind)
        elif not is_utf8(data):
            reason = f"{prefix}record is neither gzip nor UTF-8 text (binary or CBOR?)"
            ctx.unparsed("not_utf8", reason, kind=kind)
        else:
            ctx.unparsed("invalid_json", f"{prefix}record is not JSON: {error}", kind=kind)
        return None
    if not isinstance(doc, dict):
        what = "a JSON array" if isinstance(doc, list) else f"a JSON {type(doc).__name__}"
        prefix = f"{kind}: " if kind else ""
        ctx.unparsed("unknown_shape", f"{prefix}record is {what}, not an object", kind=kind)
        return None
    return doc


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
