"""Detect alarms (rule, statistical and ML behaviors): one ``aws:iot:defender:violation`` each."""

from __future__ import annotations

from typing import Any

from transform.context import RecordContext
from transform.decoders.common import check_document
from transform.sourcetypes import VIOLATION

KIND = "violation"


def decode(doc: dict[str, Any], ctx: RecordContext, *, source: str | None = None) -> None:
    if not check_document(ctx, doc, KIND):
        return
    thing = doc["thingName"]
    behavior = doc["behavior"]
    criteria = behavior.get("criteria") or {}
    ml_config = criteria.get("mlDetectionConfig")
    doc["thing"] = thing
    doc["behavior_type"] = (
        "ml" if ml_config else "statistical" if "statisticalThreshold" in criteria else "static"
    )
    confidence = (doc.get("violationEventAdditionalInfo") or {}).get("confidenceLevel") or (
        ml_config or {}
    ).get("confidenceLevel")
    if confidence:
        doc["confidence_level"] = confidence
    fields = {
        "thing": thing,
        "behavior": behavior["name"],
        "violation_event_type": doc["violationEventType"],
    }
    if metric := behavior.get("metric"):
        doc["metric"] = metric
        fields["metric"] = metric
    if profile := doc.get("securityProfileName"):
        fields["security_profile"] = profile
    ctx.emit(
        VIOLATION, doc, when=doc["violationEventTime"], host=thing, source=source, fields=fields
    )
