"""The baseline the transform is measured against: the public sample's approach.

Stdlib json, no validation, no dedupe, no size guard; one sourcetype per kind. It reads what
today's rules forward, a route envelope, by decoding its base64 payload: the least it must do
with the same input (the sample itself predates route envelopes).
"""

from __future__ import annotations

import base64
import json
from typing import Any

Doc = dict[str, Any]


def _wrappers(doc: Any) -> list[Doc]:
    if isinstance(doc.get("metrics"), list):
        return [{"sourcetype": "aws:iot:defender:metric", "event": m} for m in doc["metrics"]]
    if "TopicArn" in doc and "Message" in doc:
        message = json.loads(doc["Message"])
        details = message.get("auditDetails", [])
        return [{"sourcetype": "aws:iot:defender:audit", "event": d} for d in details]
    return []


def naive_handler(event: Doc) -> tuple[Doc, int]:
    """Every record Ok with its wrapped events concatenated; nothing is ever re-put."""
    output = []
    for record in event["records"]:
        doc = json.loads(base64.b64decode(record["data"]))
        if "route" in doc:
            doc = json.loads(base64.b64decode(doc["payload"]))
        data = "".join(json.dumps(wrapper) for wrapper in _wrappers(doc))
        encoded = base64.b64encode(data.encode("utf-8")).decode("utf-8")
        output.append({"recordId": record["recordId"], "result": "Ok", "data": encoded})
    return {"records": output}, 0


def naive_events(data: bytes) -> int:
    """The events in one of the baseline's output records."""
    return data.count(b'{"sourcetype": ')
