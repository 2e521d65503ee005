"""Lambda entry point: an Amazon Data Firehose transformation event in, one result per record out.

Configuration: see ``transform.config``. Observability: powertools structured logs and EMF
metrics (namespace ``IotDefenderSplunk``), one set per invocation.

What a handler works with, its settings and its re-ingest client, is a ``Runtime`` given to
``make_handler``. The deployed ``lambda_handler`` builds its own from the environment on its
first invocation and keeps it for the container's life; the demo, the bench and the tests give
theirs explicitly, so nothing needs patching.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from shared.firehose import (
    PUT_CALL_SECONDS,
    FirehoseClient,
    put_client_options,
    put_records,
    stream_name_from_arn,
)
from shared.observability import METRICS_NAMESPACE
from transform.batch import DROPPED, FAILED, OK, BatchReport, InputRecord, Reput, transform_batch
from transform.config import Settings, load_settings
from transform.sourcetypes import UNPARSED

SERVICE = "iot-defender-splunk-transform"
# Where events come from when the invocation names no usable stream.
UNKNOWN_STREAM_SOURCE = "aws:firehose"

# The whole re-put stops ANSWER_MARGIN_SECONDS before the invocation's end, leaving time to
# return the response.
ANSWER_MARGIN_SECONDS = 5.0

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)


class InvocationContext(Protocol):
    """What the handler and powertools read of Lambda's context: a LambdaContext, or a stand-in
    when the handler runs outside Lambda (demo, bench, tests)."""

    @property
    def function_name(self) -> str: ...

    @property
    def memory_limit_in_mb(self) -> int: ...

    @property
    def invoked_function_arn(self) -> str: ...

    @property
    def aws_request_id(self) -> str: ...

    def get_remaining_time_in_millis(self) -> int: ...


Handler = Callable[[dict[str, Any], InvocationContext], dict[str, Any]]


@dataclass(frozen=True)
class Runtime:
    """What the handler works with. Without a client, re-ingest uses the container's own
    Firehose client, made on the first re-put."""

    settings: Settings
    firehose: FirehoseClient | None = None

    def firehose_client(self) -> FirehoseClient:
        return self.firehose if self.firehose is not None else container_firehose_client()


@functools.cache
def container_runtime() -> Runtime:
    """The deployed handler's runtime: settings from the environment, read once per container
    (a bad setting fails every invocation loudly, as at cold start)."""
    return Runtime(load_settings(os.environ))


@functools.cache
def container_firehose_client() -> FirehoseClient:
    """One client per container, as Lambda advises. boto3 is imported on first re-ingest only:
    it costs ~170 ms and ~30 MB at cold start."""
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415

    client: FirehoseClient = boto3.client("firehose", config=Config(**put_client_options()))
    return client


def _reput_into(runtime: Runtime, stream_name: str | None, deadline: float) -> Reput | None:
    if stream_name is None:
        return None

    def reput(payloads: list[bytes]) -> list[int]:
        return put_records(
            runtime.firehose_client(),
            stream_name,
            payloads,
            deadline=deadline,
            call_seconds=PUT_CALL_SECONDS,
        )

    return reput


def _input_records(event: dict[str, Any]) -> list[InputRecord]:
    """Every record that can be answered, whatever else is wrong with it.

    Only ``recordId`` is needed to answer: a record without ``data`` or an arrival time still
    gets its result (docs/events.md, "Malformed Firehose records"). A record with no
    ``recordId`` cannot be answered at all; Firehose never sends one, and it is logged.
    """
    raw_records = event.get("records")
    if not isinstance(raw_records, list):
        raise ValueError("not a Firehose data-transformation event: 'records' is not a list")
    records = []
    for position, raw in enumerate(raw_records):
        if not isinstance(raw, dict) or raw.get("recordId") is None:
            logger.error("record without a recordId cannot be answered", extra={"at": position})
            continue
        records.append(
            InputRecord(raw["recordId"], raw.get("data"), raw.get("approximateArrivalTimestamp"))
        )
    return records


def make_handler(runtime: Runtime | None = None) -> Handler:
    """A Lambda handler over `runtime`; without one, over the container's (`container_runtime`)."""
    runtime_of: Callable[[], Runtime] = container_runtime if runtime is None else lambda: runtime

    @metrics.log_metrics
    @logger.inject_lambda_context(log_event=False)
    def handle(event: dict[str, Any], context: InvocationContext) -> dict[str, Any]:
        return _transform(event, context, runtime_of())

    return handle


def _transform(
    event: dict[str, Any], context: InvocationContext, runtime: Runtime
) -> dict[str, Any]:
    started = time.monotonic()
    deadline = started + context.get_remaining_time_in_millis() / 1000 - ANSWER_MARGIN_SECONDS
    records = _input_records(event)
    stream_arn = event.get("deliveryStreamArn")
    stream_name = stream_name_from_arn(stream_arn)
    report = transform_batch(
        records,
        settings=runtime.settings,
        # A usable stream ARN only: a malformed value never becomes the events' source.
        stream_source=str(stream_arn) if stream_name else UNKNOWN_STREAM_SOURCE,
        now=time.time(),
        reput=_reput_into(runtime, stream_name, deadline),
    )
    _observe(report)
    # The Firehose response contract, built directly: each recordId is echoed exactly as it
    # came (powertools' record class would insist on a string).
    return {
        "records": [
            {"recordId": outcome.record_id, "result": outcome.result, "data": outcome.data}
            for outcome in report.outcomes
        ]
    }


lambda_handler = make_handler()


def _observe(report: BatchReport) -> None:
    counts = {
        "RecordsIn": len(report.outcomes),
        "RecordsOk": report.count(OK),
        "RecordsDropped": report.count(DROPPED),
        "RecordsFailed": report.count(FAILED),
        "RecordsReingested": report.reingested,
        "RecordsSplit": report.split,
        "EventsOut": sum(report.events_by_sourcetype.values()),
        "UnparsedEvents": report.events_by_sourcetype[UNPARSED],
        "DuplicatesRemoved": report.duplicates_removed,
        "TimeFallbacks": report.time_fallbacks,
        "DecoderErrors": len(report.decoder_errors),
    }
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    for sourcetype, value in sorted(report.events_by_sourcetype.items()):
        with single_metric(
            name="EventsBySourcetype",
            unit=MetricUnit.Count,
            value=value,
            namespace=METRICS_NAMESPACE,
        ) as metric:
            metric.add_dimension(name="service", value=SERVICE)
            metric.add_dimension(name="Sourcetype", value=sourcetype)
    logger.info("batch transformed", extra={"counts": counts})
    for outcome in report.outcomes:
        if outcome.result == FAILED:
            logger.error(
                "record failed", extra={"record_id": outcome.record_id, "reason": outcome.reason}
            )
    for error in report.decoder_errors:
        logger.error("decoder error (record sent as unparsed)", extra={"traceback": error})
