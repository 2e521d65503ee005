"""Lambda entry point of the responder: one request in (docs/response.md), one answer out.

The answer is always a JSON object for a request it understood, whatever happened: SOAR's
AWS Lambda app fails the action when the function raises, and a playbook must be able to tell
a refusal or an AWS error from a crash. Only an invocation that is not a JSON object raises.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from respond.actions import ERROR, NOOP, OK, PLANNED, REFUSED, Responder, Target, failure
from respond.records import response_records
from respond.requests import RefusedError, Request, parse_request
from respond.settings import Settings, load_settings
from respond.store import QuarantineStore
from shared.aws import error_code
from shared.firehose import PUT_CALL_SECONDS, put_client_options, put_records
from shared.observability import METRICS_NAMESPACE

SERVICE = "iot-defender-splunk-responder"
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)

# Every AWS call has short timeouts and few retries: a playbook waits for the answer, and the
# function's timeout (60 s) must hold a fleet action of FleetActionCap things.
CLIENT_CONFIG = Config(
    connect_timeout=2, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 3}
)
# The audit trail's PutRecordBatch stops this long before the function's timeout.
ANSWER_MARGIN_SECONDS = 3.0
# What the deadline is read from (a test stops it, to put the audit trail at its exact edge).
clock: Callable[[], float] = time.monotonic
STATUSES = (OK, NOOP, PLANNED, REFUSED, ERROR)


@cache
def settings() -> Settings:
    return load_settings(os.environ)


@cache
def iot_client() -> Any:
    return boto3.client("iot", config=CLIENT_CONFIG)


@cache
def iot_data_client() -> Any:
    """The data plane (DeleteConnection) lives at the account's own endpoint."""
    endpoint = iot_client().describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    return boto3.client("iot-data", endpoint_url=f"https://{endpoint}", config=CLIENT_CONFIG)


@cache
def firehose_client() -> Any:
    """One attempt per call: put_records retries the failed entries itself, within the deadline."""
    return boto3.client("firehose", config=Config(**put_client_options()))


@cache
def store() -> QuarantineStore:
    table = boto3.resource("dynamodb", config=CLIENT_CONFIG).Table(settings().state_table)
    return QuarantineStore(table)


def end_session(client_id: str) -> str:
    """Force the client's MQTT session off, so it must reconnect under the quarantine's deny.

    Best effort: the quarantine holds without it (the deny applies to every new operation).
    """
    try:
        iot_data_client().delete_connection(clientId=client_id, preventWillMessage=True)
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return "not connected"
        return f"not ended ({error_code(error)})"
    except BotoCoreError as error:
        return f"not ended ({type(error).__name__})"
    return "ended"


def responder() -> Responder:
    return Responder(settings(), iot_client(), store(), end_session)


@metrics.log_metrics
@logger.inject_lambda_context(log_event=True)
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    deadline = clock() + context.get_remaining_time_in_millis() / 1000
    try:
        request = parse_request(event)
    except RefusedError as refusal:
        refused = _refused(event, str(refusal))
        _record_metrics(refused)
        return refused
    if request.changes and not request.dry_run:
        answer = _once(request, context, deadline)
    else:
        answer = respond(request, deadline)
    _record_metrics(answer)
    logger.info("answered", extra={"answer": answer})
    return answer


def respond(request: Request, deadline: float) -> dict[str, Any]:
    """Run the request, write its audit trail (executed changes only) and build the answer."""
    response_id = str(uuid.uuid4())
    requested_at = time.time()
    targets = _dispatch(responder(), request)
    records = response_records(
        request, response_id, targets, requested_at=requested_at, completed_at=time.time()
    )
    answer = build_answer(request, response_id, targets)
    if records:
        _write_audit_trail(request, answer, records, deadline)
    return answer


def _dispatch(worker: Responder, request: Request) -> list[Target]:
    """The action's targets: one thing, the things of a fleet scope, a certificate, a task."""
    one_thing = {"quarantine_thing": worker.quarantine_thing, "release_thing": worker.release_thing}
    per_thing = {
        "quarantine_group": worker.quarantine_thing,
        "quarantine_version": worker.quarantine_thing,
        "release_group": worker.release_thing,
        "release_version": worker.release_thing,
    }
    whole = {
        "describe_thing": worker.describe_thing,
        "deactivate_certificate": worker.deactivate_certificate,
        "remediate_audit_finding": worker.remediate_audit_finding,
    }
    if request.action in one_thing:
        return [one_thing[request.action](request)]
    if request.action in per_thing:
        return worker.fleet(request, per_thing[request.action])
    return whole[request.action](request)


def build_answer(request: Request, response_id: str, targets: list[Target]) -> dict[str, Any]:
    counts = Counter(target.status for target in targets)
    answer: dict[str, Any] = {
        "status": _overall(counts, request.dry_run),
        "action": request.action,
        "request_id": request.request_id,
        "response_id": response_id,
        "message": "; ".join(target.message for target in targets) or "no things to act on",
        "targets": [target.as_dict() for target in targets],
        "counts": {"targets": len(targets), **{status: counts[status] for status in STATUSES}},
    }
    first_error = next((target.error for target in targets if target.error), None)
    if first_error:
        answer["error"] = first_error
    return answer


def _overall(counts: Counter[str], dry_run: bool) -> str:
    if counts[ERROR]:
        return ERROR
    if dry_run and counts[PLANNED]:
        return PLANNED
    if counts[OK] or counts[PLANNED]:
        return OK
    if counts[REFUSED]:
        return REFUSED
    return NOOP


def _once(request: Request, context: LambdaContext, deadline: float) -> dict[str, Any]:
    """The request at most once per request_id: a retry gets the first answer back (and
    writes no second audit trail, which is part of the first run)."""
    run = _idempotent_runner()
    _idempotency_config().register_lambda_context(context)
    try:
        answer: dict[str, Any] = run(request=_as_document(request), deadline=deadline)
    except IdempotencyValidationError:
        return _refused_request(request, "request_id was already used for a different request")
    except IdempotencyAlreadyInProgressError:
        return _refused_request(request, "a request with this request_id is still running")
    return answer


def _as_document(request: Request) -> dict[str, Any]:
    return {
        "action": request.action,
        "request_id": request.request_id,
        "requested_by": request.requested_by,
        "reason": request.reason,
        "dry_run": request.dry_run,
        **request.params,
    }


@cache
def _idempotency_config() -> IdempotencyConfig:
    return IdempotencyConfig(
        event_key_jmespath="request_id",
        payload_validation_jmespath="@",
        expires_after_seconds=settings().idempotency_seconds,
        raise_on_no_idempotency_key=True,
    )


@cache
def _idempotent_runner() -> Any:
    persistence = DynamoDBPersistenceLayer(
        table_name=settings().idempotency_table, boto_config=CLIENT_CONFIG
    )

    def run(request: dict[str, Any], deadline: float) -> dict[str, Any]:
        return respond(parse_request(request), deadline)

    # powertools' decorator is untyped: the wrapped function is used as Any.
    return idempotent_function(
        run,
        data_keyword_argument="request",
        persistence_store=persistence,
        config=_idempotency_config(),
    )


# Held here, not looked up at reset: a test may have replaced a module attribute meanwhile.
_CONTAINER_CACHES = (
    settings,
    iot_client,
    iot_data_client,
    firehose_client,
    store,
    _idempotency_config,
    _idempotent_runner,
)


def reset_container() -> None:
    """Forget what this container cached (settings, clients, the store, idempotency), as a new
    container would: for local runs and tests that change the environment between calls."""
    for cached in _CONTAINER_CACHES:
        cached.cache_clear()


def _refused(event: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """The refusal of a request (parse_request refuses JSON objects only), echoing what it
    named when that is text."""
    return {
        "status": REFUSED,
        "action": event.get("action") if isinstance(event.get("action"), str) else None,
        "request_id": event.get("request_id") if isinstance(event.get("request_id"), str) else None,
        "response_id": str(uuid.uuid4()),
        "message": reason,
        "targets": [],
        "counts": {"targets": 0, **dict.fromkeys(STATUSES, 0)},
    }


def _refused_request(request: Request, reason: str) -> dict[str, Any]:
    return _refused({"action": request.action, "request_id": request.request_id}, reason)


def _write_audit_trail(
    request: Request, answer: dict[str, Any], records: list[bytes], deadline: float
) -> None:
    try:
        failed = put_records(
            firehose_client(),
            settings().stream_name,
            records,
            deadline=deadline - ANSWER_MARGIN_SECONDS,
            call_seconds=PUT_CALL_SECONDS,
            clock=clock,
        )
    except (ClientError, BotoCoreError) as error:
        failed = list(range(len(records)))
        logger.error("audit trail not written", extra={"error": failure(error)})
    if failed:
        answer["audit_trail"] = f"{len(failed)} of {len(records)} response records not delivered"
        logger.error(
            "response records not delivered",
            extra={
                "request_id": request.request_id,
                "records": [records[i].decode() for i in failed],
            },
        )


def _record_metrics(answer: dict[str, Any]) -> None:
    metrics.add_metric(name="ResponseRequests", unit=MetricUnit.Count, value=1)
    for status in STATUSES:
        metrics.add_metric(
            name=f"ResponseTargets{status.title()}",
            unit=MetricUnit.Count,
            value=answer.get("counts", {}).get(status, 0),
        )
