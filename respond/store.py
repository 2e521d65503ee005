"""What a quarantine changed, kept in DynamoDB so a release can undo exactly that.

One item per quarantined thing, written (conditionally) before the first change, so two
requests cannot quarantine one thing at once and a release always knows what to restore.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from shared.aws import error_code


@dataclass
class QuarantineRecord:
    thing_name: str
    request_id: str
    requested_by: str
    reason: str
    quarantined_at: float
    deactivated_certificates: list[str] = field(default_factory=list)

    def as_item(self) -> dict[str, Any]:
        return {
            "thing_name": self.thing_name,
            "request_id": self.request_id,
            "requested_by": self.requested_by,
            "reason": self.reason,
            # DynamoDB numbers come back as Decimal; milliseconds keep them whole.
            "quarantined_at_ms": int(self.quarantined_at * 1000),
            "deactivated_certificates": list(self.deactivated_certificates),
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> QuarantineRecord:
        return cls(
            thing_name=str(item["thing_name"]),
            request_id=str(item["request_id"]),
            requested_by=str(item.get("requested_by", "")),
            reason=str(item.get("reason", "")),
            quarantined_at=int(item["quarantined_at_ms"]) / 1000,
            deactivated_certificates=[str(c) for c in item.get("deactivated_certificates", [])],
        )

    def summary(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "requested_by": self.requested_by,
            "reason": self.reason,
            "quarantined_at": self.quarantined_at,
            "deactivated_certificates": list(self.deactivated_certificates),
        }


class AlreadyRecordedError(Exception):
    """Another quarantine of this thing holds the record (it is quarantined, or in progress)."""


class QuarantineStore:
    """The table the stack creates (``STATE_TABLE``), keyed by ``thing_name``."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, thing: str) -> QuarantineRecord | None:
        item = self._table.get_item(Key={"thing_name": thing}, ConsistentRead=True).get("Item")
        return QuarantineRecord.from_item(item) if item else None

    def begin(self, record: QuarantineRecord) -> None:
        """Claim the thing before changing it; raises AlreadyRecordedError if claimed."""
        try:
            self._table.put_item(
                Item=record.as_item(), ConditionExpression="attribute_not_exists(thing_name)"
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                raise AlreadyRecordedError(record.thing_name) from None
            raise

    def delete(self, thing: str) -> None:
        self._table.delete_item(Key={"thing_name": thing})
