"""The Lambda entry point: Firehose contract, EMF metrics, structured logs."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import all_events, firehose_event, fixture

Run = Callable[[dict[str, Any]], dict[str, Any]]


def _emf(output: str) -> list[dict[str, Any]]:
    documents = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [doc for doc in documents if "_aws" in doc]


def test_every_record_comes_back_once_in_order(run_handler: Run) -> None:
    payloads = [
        fixture("metrics_export", "all_value_kinds.json"),
        b"not json at all",
        fixture("iot_logs", "control_message.json"),
        fixture("violation", "in_alarm_rule_count_sns.json"),
    ]
    event = firehose_event(payloads)

    response = run_handler(event)

    assert [r["recordId"] for r in response["records"]] == [r["recordId"] for r in event["records"]]
    assert [r["result"] for r in response["records"]] == ["Ok", "Ok", "Dropped", "Ok"]
    sourcetypes = {e["sourcetype"] for e in all_events(response)}
    assert sourcetypes == {
        "aws:iot:defender:metric",
        "aws:iot:defender:unparsed",
        "aws:iot:defender:violation",
    }


def test_ok_data_is_newline_terminated_hec_json(run_handler: Run) -> None:
    import base64  # noqa: PLC0415

    response = run_handler(firehose_event([fixture("metrics_export", "with_dimension.json")]))
    data = base64.b64decode(response["records"][0]["data"])
    assert data.endswith(b"\n")
    assert all(json.loads(line)["event"] for line in data.splitlines())


def test_emits_emf_metrics_per_invocation(
    run_handler: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    payloads = [
        fixture("metrics_export", "duplicate_versions.json"),
        b"\xff\xfe binary",
        fixture("iot_logs", "control_message.json"),
    ]
    run_handler(firehose_event(payloads))

    documents = _emf(capsys.readouterr().out)
    totals = next(doc for doc in documents if "RecordsIn" in doc)
    assert totals["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "IotDefenderSplunk"
    assert totals["RecordsIn"] == [3.0]
    assert totals["RecordsOk"] == [2.0]
    assert totals["RecordsDropped"] == [1.0]
    assert totals["RecordsFailed"] == [0.0]
    assert totals["RecordsReingested"] == [0.0]
    assert totals["EventsOut"] == [6.0]
    assert totals["UnparsedEvents"] == [1.0]
    assert totals["DuplicatesRemoved"] == [3.0]
    per_sourcetype = sorted(
        (doc["Sourcetype"], doc["EventsBySourcetype"]) for doc in documents if "Sourcetype" in doc
    )
    # A list, not a dict: a sourcetype emitted twice would show as two entries.
    assert per_sourcetype == [
        ("aws:iot:defender:metric", [5.0]),
        ("aws:iot:defender:unparsed", [1.0]),
    ]


def test_logs_a_batch_summary_and_each_failed_record(
    run_handler: Run, caplog: pytest.LogCaptureFixture
) -> None:
    huge = b'{"blob": "' + b"x" * 4_600_000 + b'"}'  # unparsed output exceeds the response
    run_handler(firehose_event([fixture("lifecycle", "connected.json"), huge]))

    summary = next(r for r in caplog.records if r.getMessage() == "batch transformed")
    assert summary.counts["RecordsOk"] == 1  # type: ignore[attr-defined]
    assert summary.counts["RecordsFailed"] == 1  # type: ignore[attr-defined]
    failed = next(r for r in caplog.records if r.getMessage() == "record failed")
    assert "can never fit" in failed.reason  # type: ignore[attr-defined]
    assert failed.levelname == "ERROR"


def test_an_event_without_records_gets_an_empty_answer(run_handler: Run) -> None:
    assert run_handler(firehose_event([])) == {"records": []}


def test_without_a_stream_arn_events_are_sourced_to_firehose(run_handler: Run) -> None:
    event = firehose_event([fixture("lifecycle", "connected.json")])
    del event["deliveryStreamArn"]
    (hec,) = all_events(run_handler(event))
    assert hec["source"] == "aws:firehose"
