"""The collectors' checkpoint table and self-invoke, for the collector tests.

``checkpoint_table`` is the table in moto's DynamoDB, as the stack creates it; ``FakeTable``
is an in-memory stand-in that evaluates the store's three condition expressions the way
DynamoDB does (tests/test_collect_checkpoint.py runs every store test on both), fast enough
for the scale proofs' thousands of saves. ``Engine`` wires either into a collector module,
with a Lambda client that records the continuation invokes instead of sending them.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from collect.checkpoint import Checkpoint, CheckpointStore
from collect.deadline import Deadline

__all__ = ["TABLE", "Engine", "FakeTable", "LostAnswers", "WallClock", "checkpoint_table"]

TABLE = "iot-defender-splunk-checkpoints"


class WallClock:
    """Epoch milliseconds that move only when a test moves them."""

    def __init__(self, now_ms: int = 1_795_226_400_000) -> None:
        self.now = now_ms

    def __call__(self) -> int:
        return self.now


@contextmanager
def checkpoint_table(clock: Callable[[], int] | None = None) -> Iterator[CheckpointStore]:
    """The table (key ``exportKey``, on demand) in moto, and a store on it."""
    with mock_aws():
        client: Any = boto3.client("dynamodb", region_name="eu-west-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "exportKey", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "exportKey", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield CheckpointStore(client, TABLE, clock or WallClock())


class FakeTable:
    """GetItem and conditional PutItem on one table, in memory; ``writes`` counts PutItems."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.writes = 0

    def get_item(self, *, TableName: str, Key: Any, ConsistentRead: bool) -> Any:  # noqa: N803
        assert (TableName, ConsistentRead) == (TABLE, True)
        item = self.items.get(Key["exportKey"]["S"])
        return {} if item is None else {"Item": copy.deepcopy(item)}

    def put_item(self, **request: Any) -> Any:
        item = request["Item"]
        key = item["exportKey"]["S"]
        current = self.items.get(key)
        if not self._holds(current, request):
            error: Any = {"Error": {"Code": "ConditionalCheckFailedException", "Message": "failed"}}
            if current is not None and request.get("ReturnValuesOnConditionCheckFailure"):
                error["Item"] = copy.deepcopy(current)  # ALL_OLD, the only value it takes
            raise ClientError(error, "PutItem")
        self.items[key] = copy.deepcopy(item)
        self.writes += 1
        return {}

    @staticmethod
    def _holds(current: dict[str, Any] | None, request: dict[str, Any]) -> bool:
        condition = request["ConditionExpression"]
        values = request.get("ExpressionAttributeValues", {})
        if condition == "attribute_not_exists(exportKey)":
            return current is None
        if condition == "revision = :seen":
            return current is not None and current["revision"] == values[":seen"]
        if condition == "#owner = :me AND revision = :mine":
            return (
                current is not None
                and current["owner"] == values[":me"]
                and current["revision"] == values[":mine"]
            )
        raise AssertionError(f"the fake does not know the condition {condition!r}")


class LostAnswers:
    """``client``, but each PutItem is sent twice, as botocore retries one whose answer was
    lost after DynamoDB applied it: the caller sees only the second attempt's outcome."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def get_item(self, **request: Any) -> Any:
        return self.client.get_item(**request)

    def put_item(self, **request: Any) -> Any:
        with contextlib.suppress(ClientError):  # refused: the retry is refused the same way
            self.client.put_item(**request)
        return self.client.put_item(**request)


class Engine:
    """The checkpoint store and self-invoke a collector module's handler gets, for tests.

    ``invokes`` keeps each continuation event the handler sent; nothing runs it until the
    test does (``next_event``), as Lambda would run it later, in another invocation.
    """

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        module: Any,
        now_ms: Callable[[], int],
        table: FakeTable | None = None,
        connect: Callable[[Deadline], Any] | None = None,
    ) -> None:
        """``connect`` is the client the handler's store gets for its deadline (a timed or
        real client on ``table``); by default ``table`` itself, free and instant."""
        self.table = table or FakeTable()
        self.store = CheckpointStore(cast("Any", self.table), TABLE, now_ms)
        self.invokes: list[dict[str, Any]] = []
        self.functions: list[str] = []
        monkeypatch.setenv("CHECKPOINT_TABLE_NAME", TABLE)
        client_for: Callable[[Deadline], Any] = connect or (lambda _: self.table)
        monkeypatch.setattr(
            module, "checkpoint_store", lambda d: CheckpointStore(client_for(d), TABLE, now_ms)
        )
        monkeypatch.setattr(module, "lambda_client", lambda _: self)

    def invoke(self, *, FunctionName: str, InvocationType: str, Payload: bytes) -> Any:  # noqa: N803
        assert InvocationType == "Event"
        self.functions.append(FunctionName)
        self.invokes.append(json.loads(Payload))
        return {"StatusCode": 202}

    def next_event(self) -> dict[str, Any] | None:
        """The oldest continuation not yet run, taken off the queue."""
        return self.invokes.pop(0) if self.invokes else None

    def checkpoint(self, key: str) -> Checkpoint | None:
        return self.store.load(key)
