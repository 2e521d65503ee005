"""Where each long export is, kept in DynamoDB, so a slice killed or out of time loses nothing.

One item per export key (``audit#<taskId>``, ``inventory``) holds the export's status
(``running`` / ``done``), its cursor (JSON: where the listing resumes), its counts, and the
lease of the one slice allowed to work on it. Every write is conditional:

* ``claim`` takes the item only if it is unchanged since it was read (its ``revision``), so of
  two invocations racing for an export exactly one wins; a live lease held by another slice,
  or a finished audit, is refused.
* ``save`` (after each batch put), ``release`` and ``finish`` succeed only while this slice is
  still the owner and nobody wrote since: a slice whose lease was taken over stops instead of
  putting twice. Lambda retries an event under the same request id (the owner), so the
  retry of a slice that died takes its lease over at once.
* A write refused only because its own first attempt landed (botocore retried it after the
  answer was lost) succeeds: the refusal returns the item the table holds, and it is this
  write's. Otherwise a lost answer would read as a takeover and strand the export.

Times are epoch milliseconds of the wall clock (leases must hold across Lambda hosts);
``expiresAt`` is the table's TTL attribute, in epoch seconds.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

import boto3
from botocore.exceptions import ClientError

from collect.deadline import Deadline, client_config, guard_client
from shared.aws import error_code
from shared.settings import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, PutItemInputTypeDef

    Item: TypeAlias = dict[str, AttributeValueTypeDef]
else:
    DynamoDBClient: TypeAlias = Any
    PutItemInputTypeDef: TypeAlias = dict
    Item: TypeAlias = dict[str, Any]

__all__ = [
    "CHECKPOINT_TABLE_ENV",
    "DONE",
    "KEY_ATTRIBUTE",
    "RUNNING",
    "TTL_ATTRIBUTE",
    "Checkpoint",
    "CheckpointStore",
    "ClaimRefusedError",
    "ExportStalledError",
    "LeaseLostError",
    "checkpoint_store",
]

CHECKPOINT_TABLE_ENV: Final = "CHECKPOINT_TABLE_NAME"
# The table's hash key and its TTL attribute (sam/template.yaml declares both).
KEY_ATTRIBUTE: Final = "exportKey"
TTL_ATTRIBUTE: Final = "expiresAt"
RUNNING: Final = "running"
DONE: Final = "done"
# A finished audit's item is kept this long, so a late SNS redelivery still finds it done.
RETENTION_SECONDS: Final = 30 * 24 * 3600
# Lambda hosts' clocks agree to well within this; a lease outlives its slice by this much.
LEASE_MARGIN_MS: Final = 5_000

Status: TypeAlias = Literal["running", "done"]
Restart: TypeAlias = Literal["never", "when-done"]


class ClaimRefusedError(RuntimeError):
    """Another slice holds the export, or it is finished and must not run again."""


class ExportStalledError(RuntimeError):
    """The export cannot go on by itself; the message says where it stopped, to resume it."""


class LeaseLostError(RuntimeError):
    """Another slice took the export over: this one must stop putting."""


@dataclass
class Checkpoint:
    """One export's item, as this slice holds it."""

    key: str
    owner: str
    status: Status = RUNNING
    cursor: dict[str, Any] = field(default_factory=dict)
    records: int = 0
    pages: int = 0
    slices: int = 0
    slice_limit: int = 0
    started_at: int = 0
    updated_at: int = 0
    lease_expires_at: int = 0
    revision: int = 0
    # Kept from one export to the next (the registry's group-lookup rotation offset).
    carry: dict[str, Any] = field(default_factory=dict)

    def where(self) -> dict[str, Any]:
        """What an operator needs to find and resume this export (log lines, DLQ errors)."""
        return {"checkpoint_key": self.key, "cursor": self.cursor, "slices": self.slices}


@dataclass
class CheckpointStore:
    """The checkpoint table through one DynamoDB client; ``now_ms`` is the wall clock."""

    client: DynamoDBClient
    table: str
    now_ms: Callable[[], int] = field(default=lambda: time.time_ns() // 1_000_000)

    def load(self, key: str) -> Checkpoint | None:
        answer = self.client.get_item(
            TableName=self.table, Key={KEY_ATTRIBUTE: {"S": key}}, ConsistentRead=True
        )
        item = answer.get("Item")
        return None if item is None else _from_item(item)

    def claim(
        self,
        key: str,
        owner: str,
        *,
        lease_ms: int,
        max_slices: int,
        restart: Restart,
        by_hand: bool = False,
    ) -> tuple[Checkpoint, bool]:
        """Take the export for one slice of ``lease_ms``; returns it and whether it resumed.

        ``restart="when-done"`` starts a finished export over (the inventory's next run);
        ``"never"`` refuses it (an audit task is collected once). ``by_hand`` (an operator's
        resume) gives the export ``max_slices`` more slices.
        """
        now = self.now_ms()
        seen = self.load(key)
        held = seen is not None and seen.status == RUNNING and seen.lease_expires_at > now
        # Lambda retries a failed asynchronous event under its request id: the retry of a
        # slice that died takes its own lease over.
        if seen is not None and held and seen.owner != owner:
            raise ClaimRefusedError(
                f"{key} is being collected by {seen.owner} until {seen.lease_expires_at} "
                f"(epoch ms); this invocation puts nothing"
            )
        if seen is not None and seen.status == DONE and restart == "never":
            raise ClaimRefusedError(f"{key} was already collected in full; nothing is put again")
        resumed = seen is not None and seen.status == RUNNING
        if seen is None or not resumed:
            claimed = Checkpoint(key, owner, started_at=now, slice_limit=max_slices)
            claimed.carry = {} if seen is None else seen.carry
        else:
            claimed = replace(seen, owner=owner)
            if by_hand:
                claimed.slice_limit = seen.slices + max_slices
        if claimed.slices >= claimed.slice_limit:
            raise ExportStalledError(
                f"{key} has used all {claimed.slice_limit} slices it may run; resume it by "
                f"hand once the cause is fixed (cursor {json.dumps(claimed.cursor)})"
            )
        claimed.slices += 1
        claimed.lease_expires_at = now + lease_ms + LEASE_MARGIN_MS
        condition = f"attribute_not_exists({KEY_ATTRIBUTE})" if seen is None else "revision = :seen"
        values: Item = {} if seen is None else {":seen": {"N": str(seen.revision)}}
        if not self._write(claimed, condition, values):
            raise ClaimRefusedError(f"{key} was claimed by another invocation at the same time")
        return claimed, resumed

    def save(self, checkpoint: Checkpoint) -> None:
        """Write the cursor and counts; LeaseLostError once another slice owns the export.

        Conditional on the owner and on the revision this slice last wrote, so of two
        invocations under one request id (a duplicate delivery) only the later claim goes on.
        """
        values: Item = {
            ":me": {"S": checkpoint.owner},
            ":mine": {"N": str(checkpoint.revision)},
        }
        if not self._write(checkpoint, "#owner = :me AND revision = :mine", values):
            raise LeaseLostError(
                f"{checkpoint.key} was taken over by another invocation; this slice stops"
            )

    def release(self, checkpoint: Checkpoint) -> None:
        """End this slice's lease, so the next slice (or run) may claim the export at once."""
        checkpoint.lease_expires_at = 0
        self.save(checkpoint)

    def finish(self, checkpoint: Checkpoint) -> None:
        checkpoint.status = DONE
        self.release(checkpoint)

    def _write(self, checkpoint: Checkpoint, condition: str, values: Item) -> bool:
        checkpoint.revision += 1
        checkpoint.updated_at = self.now_ms()
        request: PutItemInputTypeDef = {
            "TableName": self.table,
            "Item": _to_item(checkpoint),
            "ConditionExpression": condition,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if "#owner" in condition:
            request["ExpressionAttributeNames"] = {"#owner": "owner"}
        if values:
            request["ExpressionAttributeValues"] = values
        try:
            self.client.put_item(**request)
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            # botocore retries a write whose answer was lost (a read timeout); if that attempt
            # landed, the retry fails its own condition while the table holds this very item.
            held: Any = error.response
            return bool(held.get("Item") == request["Item"])
        return True


def checkpoint_store(deadline: Deadline) -> CheckpointStore:
    """The stack's table (``CHECKPOINT_TABLE_NAME``), its calls ending before the hand-off must."""
    table = os.environ.get(CHECKPOINT_TABLE_ENV, "").strip()
    if not table:
        raise ConfigError(f"{CHECKPOINT_TABLE_ENV} is not set; the stack sets it on collectors")
    config = client_config(deadline.handoff_end - deadline.clock())
    client = boto3.client("dynamodb", config=config)
    return CheckpointStore(guard_client(client, deadline.handoff_end, deadline.clock), table)


_NUMBERS: Final = (
    ("records", "records"),
    ("pages", "pages"),
    ("slices", "slices"),
    ("slice_limit", "sliceLimit"),
    ("started_at", "startedAt"),
    ("updated_at", "updatedAt"),
    ("lease_expires_at", "leaseExpiresAt"),
    ("revision", "revision"),
)


def _to_item(checkpoint: Checkpoint) -> Item:
    item: Item = {
        KEY_ATTRIBUTE: {"S": checkpoint.key},
        "owner": {"S": checkpoint.owner},
        "status": {"S": checkpoint.status},
        "cursor": {"S": json.dumps(checkpoint.cursor, sort_keys=True)},
        "carry": {"S": json.dumps(checkpoint.carry, sort_keys=True)},
        TTL_ATTRIBUTE: {"N": str(checkpoint.updated_at // 1000 + RETENTION_SECONDS)},
    }
    for attribute, name in _NUMBERS:
        item[name] = {"N": str(getattr(checkpoint, attribute))}
    return item


def _from_item(item: Item) -> Checkpoint:
    status = item["status"]["S"]
    checkpoint = Checkpoint(
        key=item[KEY_ATTRIBUTE]["S"],
        owner=item["owner"]["S"],
        status=DONE if status == DONE else RUNNING,
        cursor=json.loads(item["cursor"]["S"]),
        carry=json.loads(item["carry"]["S"]),
    )
    for attribute, name in _NUMBERS:
        setattr(checkpoint, attribute, int(item[name]["N"]))
    return checkpoint
