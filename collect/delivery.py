"""Putting collector records into the pipeline's Firehose stream, or failing loudly.

Also the collectors' AWS clients: one per container each, pacing themselves under throttling.

The retrying PutRecordBatch lives once, in ``shared.firehose``, which every function's build
ships beside its own package.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from shared.firehose import FirehoseClient, encode, put_records

__all__ = [
    "RETRY_CONFIG",
    "DeliveryError",
    "deliver",
    "encode",
    "firehose_client",
    "iot_client",
    "stream_name",
]

# Throttling on the IoT control plane is normal at fleet scale: let botocore's adaptive mode
# pace the calls instead of failing the invocation on the first ThrottlingException.
RETRY_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 10})


class DeliveryError(RuntimeError):
    """Some records could not be put after every retry; the invocation must fail and be retried."""


def stream_name() -> str:
    """The delivery stream named by the stack (environment variable ``DELIVERY_STREAM_NAME``)."""
    name = os.environ.get("DELIVERY_STREAM_NAME", "").strip()
    if not name:
        raise DeliveryError("DELIVERY_STREAM_NAME is not set; the stack sets it on every collector")
    return name


@cache
def firehose_client() -> FirehoseClient:
    """One client per container, created on first use so imports stay cheap."""
    client: FirehoseClient = boto3.client("firehose", config=RETRY_CONFIG)
    return client


@cache
def iot_client() -> Any:
    """The IoT client, typed loosely: boto3-stubs is installed with the firehose extra only."""
    return boto3.client("iot", config=RETRY_CONFIG)


def deliver(records: Iterable[dict[str, Any]], client: FirehoseClient | None = None) -> int:
    """Put every record; return how many were put, or raise DeliveryError naming what failed."""
    payloads = [encode(record) for record in records]
    if not payloads:
        return 0
    failed = put_records(client or firehose_client(), stream_name(), payloads)
    if failed:
        raise DeliveryError(
            f"{len(failed)} of {len(payloads)} records were not accepted by Firehose "
            f"(first index {failed[0]})"
        )
    return len(payloads)
