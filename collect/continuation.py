"""Handing the rest of an export to the next slice: one asynchronous invoke of this function.

The event is ``{"resume": "<checkpoint key>"}``; the slice it starts claims the checkpoint
and resumes at its cursor. Two guard rails keep a fault from looping for ever: a slice
continues only if its cursor moved, and an export runs at most ``MAX_SLICES`` slices (since it
started, or since an operator last resumed it by hand). Either guard raises
``ExportStalledError`` instead, whose message (the function's DLQ keeps it as the
``ErrorMessage`` attribute) names the checkpoint key and cursor.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from collect.checkpoint import Checkpoint, CheckpointStore, ExportStalledError, Restart
from collect.cursor import RepeatedTokenError
from collect.deadline import Deadline, OutOfTimeError, client_config, guard_client
from collect.delivery import DeliveryError
from shared.settings import integer_setting

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
else:
    LambdaClient: TypeAlias = Any

__all__ = [
    "MAX_SLICES_ENV",
    "RESUME_KEY",
    "SLICE_ENDINGS",
    "ExportStalledError",
    "Slice",
    "continue_export",
    "lambda_client",
    "max_slices",
    "resume_key",
]

RESUME_KEY: Final = "resume"
# Set on the events this module sends; an operator's resume event has no such key.
CONTINUED: Final = "continued"
MAX_SLICES_ENV: Final = "MAX_SLICES"
# 1M things on the fleet index take about 880 s of calls (80 ms SearchIndex pages, 30 ms
# PutRecordBatch, 8 ms checkpoint saves): two 900 s slices. 48 leaves room for throttling
# storms while a stuck export still ends in the DLQ within a day of slices.
DEFAULT_MAX_SLICES: Final = 48
MAX_SLICES_LIMIT: Final = 10_000
# What ends a slice at its checkpoint (the next slice resumes there) rather than failing it:
# time running out, and AWS or delivery errors past their retries.
SLICE_ENDINGS: Final = (
    OutOfTimeError,
    ClientError,
    BotoCoreError,
    DeliveryError,
    RepeatedTokenError,
)


def max_slices(environ: Mapping[str, str]) -> int:
    """``MAX_SLICES`` (1..10,000, default 48): how many slices an export may run."""
    return integer_setting(environ, MAX_SLICES_ENV, DEFAULT_MAX_SLICES, 1, MAX_SLICES_LIMIT)


def resume_key(event: Any) -> str | None:
    """The checkpoint key of a ``{"resume": key}`` event, else None."""
    key = event.get(RESUME_KEY) if isinstance(event, Mapping) else None
    return key if isinstance(key, str) and key else None


def lambda_client(deadline: Deadline) -> LambdaClient:
    """A Lambda client whose one call ends before the hand-off must."""
    config = client_config(deadline.handoff_end - deadline.clock())
    client = boto3.client("lambda", config=config)
    guarded: LambdaClient = guard_client(client, deadline.handoff_end, deadline.clock)
    return guarded


def continue_export(
    client: LambdaClient, function_name: str, checkpoint: Checkpoint, cursor_at_start: Any
) -> None:
    """Invoke ``function_name`` to run the export's next slice, if the guard rails allow."""
    where = f"checkpoint {checkpoint.key}, cursor {json.dumps(checkpoint.cursor, sort_keys=True)}"
    if checkpoint.cursor == cursor_at_start:
        raise ExportStalledError(f"slice {checkpoint.slices} made no progress; {where}")
    if checkpoint.slices >= checkpoint.slice_limit:
        raise ExportStalledError(f"the export used all {checkpoint.slice_limit} slices; {where}")
    client.invoke(
        FunctionName=function_name,
        InvocationType="Event",
        Payload=json.dumps({RESUME_KEY: checkpoint.key, CONTINUED: True}).encode(),
    )


@dataclass
class Slice:
    """One invocation's turn at an export: its claim, a save per batch put, its hand-off."""

    store: CheckpointStore
    checkpoint: Checkpoint
    resumed: bool
    cursor_at_start: dict[str, Any]
    records_at_start: int
    pages_at_start: int

    @classmethod
    def claim(
        cls,
        store: CheckpointStore,
        key: str,
        owner: str,
        *,
        lease_ms: int,
        restart: Restart,
        event: Any = None,
    ) -> Slice:
        """Claim ``key`` (ClaimRefusedError if held or done); an operator's resume event
        (``{"resume": key}`` without ``continued``) grants a fresh slice budget."""
        by_hand = resume_key(event) is not None and not event.get(CONTINUED)
        checkpoint, resumed = store.claim(
            key,
            owner,
            lease_ms=lease_ms,
            max_slices=max_slices(os.environ),
            restart=restart,
            by_hand=by_hand,
        )
        return cls(
            store,
            checkpoint,
            resumed,
            dict(checkpoint.cursor),
            checkpoint.records,
            checkpoint.pages,
        )

    def save(self, cursor: dict[str, Any], records: int, pages: int) -> None:
        """Everything before ``cursor`` is put: ``records`` and ``pages`` in this slice."""
        self.checkpoint.cursor = cursor
        self.checkpoint.records = self.records_at_start + records
        self.checkpoint.pages = self.pages_at_start + pages
        self.store.save(self.checkpoint)

    def hand_off(
        self, complete: bool, invoker: Callable[[], LambdaClient], function_name: str
    ) -> Literal["done", "continued"]:
        """Finish the export, or release it and start the next slice (guard rails permitting)."""
        if complete:
            self.store.finish(self.checkpoint)
            return "done"
        self.store.release(self.checkpoint)
        continue_export(invoker(), function_name, self.checkpoint, self.cursor_at_start)
        return "continued"
