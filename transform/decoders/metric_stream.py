"""CloudWatch metric stream (JSON output): one ``aws:iot:cloudwatch:metric`` event per line."""

from __future__ import annotations

from typing import Any

import orjson

from transform.context import RecordContext
from transform.decoders.common import check_document
from transform.sourcetypes import CLOUDWATCH_METRIC

KIND = "metric_stream"
_MARKER = b'"metric_stream_name"'


def looks_like_lines(data: bytes) -> bool:
    """Several newline-separated datapoints, as a metric stream writes them to Firehose."""
    return b"\n" in data.strip() and _MARKER in data[:1024]


def decode_lines(data: bytes, ctx: RecordContext) -> None:
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            ctx.unparsed("invalid_json", f"{KIND}: line {number}: {error}", line, kind=KIND)
            continue
        if isinstance(doc, dict):
            decode(doc, ctx)
        else:
            ctx.unparsed(
                "unknown_shape", f"{KIND}: line {number} is not an object", line, kind=KIND
            )


def decode(doc: dict[str, Any], ctx: RecordContext, *, source: str | None = None) -> None:
    if not check_document(ctx, doc, KIND):
        return
    fields = {"namespace": doc["namespace"], "metric_name": doc["metric_name"]}
    stream_source = f"cloudwatch:metric-stream:{doc['metric_stream_name']}"
    ctx.emit(CLOUDWATCH_METRIC, doc, when=doc["timestamp"], source=stream_source, fields=fields)
