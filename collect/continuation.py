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
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import boto3

from collect.checkpoint import Checkpoint
from collect.deadline import Deadline, client_config, guard_client
from shared.settings import integer_setting

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
else:
    LambdaClient: TypeAlias = Any

__all__ = [
    "MAX_SLICES_ENV",
    "RESUME_KEY",
    "ExportStalledError",
    "continue_export",
    "lambda_client",
    "max_slices",
    "resume_key",
]

RESUME_KEY: Final = "resume"
MAX_SLICES_ENV: Final = "MAX_SLICES"
# 1M things take about 1,200 s of calls: two 900 s slices. 48 leaves room for throttling
# storms while a stuck export still ends in the DLQ within a day of slices.
DEFAULT_MAX_SLICES: Final = 48
MAX_SLICES_LIMIT: Final = 10_000


class ExportStalledError(RuntimeError):
    """The export cannot go on by itself; the message says where it stopped, to resume it."""


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
        Payload=json.dumps({RESUME_KEY: checkpoint.key}).encode(),
    )
