"""A checkpoint table in moto's DynamoDB, as the stack creates it, for the collector tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto import mock_aws

from collect.checkpoint import CheckpointStore

__all__ = ["TABLE", "WallClock", "checkpoint_table"]

TABLE = "iot-defender-splunk-checkpoints"


class WallClock:
    """Epoch milliseconds that move only when a test moves them."""

    def __init__(self, now_ms: int = 1_795_226_400_000) -> None:
        self.now = now_ms

    def __call__(self) -> int:
        return self.now


@contextmanager
def checkpoint_table(clock: WallClock | None = None) -> Iterator[CheckpointStore]:
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
