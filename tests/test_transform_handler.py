"""The Lambda entry point: Firehose contract, EMF metrics, structured logs."""

from __future__ import annotations

import ast
import base64
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.fakes import FakeFirehose
from tests.support import (
    FakeLambdaContext,
    all_events,
    firehose_event,
    fixture,
    large_metrics_export,
    routed,
)
from transform import handler, reingest
from transform.config import Settings

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


# --- malformed Firehose records: every recordId that can be echoed is answered ------------


def test_a_record_without_an_arrival_time_gets_the_lambda_clock(run_handler: Run) -> None:
    forwarded = json.loads(fixture("lifecycle", "connected.json"))
    lifecycle = json.loads(base64.b64decode(forwarded["payload"]))
    lifecycle["timestamp"] = 0  # implausible, so the event falls back to the arrival time
    event = firehose_event([routed("lifecycle", lifecycle)])
    del event["records"][0]["approximateArrivalTimestamp"]
    before = time.time()

    response = run_handler(event)

    (hec,) = all_events(response)
    assert response["records"][0]["result"] == "Ok"
    assert before - 1 <= hec["time"] <= time.time() + 1


@pytest.mark.parametrize("arrival", [1e300, -5, "yesterday", True, 4_102_444_800_000])
def test_an_implausible_arrival_time_is_replaced_by_the_lambda_clock(
    run_handler: Run, arrival: object
) -> None:
    event = firehose_event([b"not json"])
    event["records"][0]["approximateArrivalTimestamp"] = arrival
    before = time.time()

    (hec,) = all_events(run_handler(event))

    assert before - 1 <= hec["time"] <= time.time() + 1


@pytest.mark.parametrize("data", [None, 12, {"a": 1}])
def test_a_record_without_a_data_string_is_answered_with_an_unparsed_event(
    run_handler: Run, data: object
) -> None:
    event = firehose_event([fixture("lifecycle", "connected.json"), b""])
    if data is None:
        del event["records"][1]["data"]
    else:
        event["records"][1]["data"] = data

    response = run_handler(event)

    assert [r["result"] for r in response["records"]] == ["Ok", "Ok"]
    (unparsed,) = [
        e for e in all_events(response) if e["sourcetype"] == "aws:iot:defender:unparsed"
    ]
    assert unparsed["event"]["reason_code"] == "invalid_record"
    assert unparsed["event"]["record_id"] == event["records"][1]["recordId"]


@pytest.mark.parametrize("record_id", [7, 7.5, ["a"], "id-\ud800-lone-surrogate", 'id-\u00e9"\\'])
def test_any_record_id_is_echoed_exactly_and_named_in_its_unparsed_event(
    run_handler: Run, record_id: object
) -> None:
    event = firehose_event([b"not json"])
    event["records"][0]["recordId"] = record_id

    response = run_handler(event)

    assert response["records"][0]["recordId"] == record_id
    json.dumps(response)  # what the Lambda runtime does with it; must not raise
    (hec,) = all_events(response)
    expected = {7: "7", 7.5: "7.5", "id-\ud800-lone-surrogate": "id-\\ud800-lone-surrogate"}
    shown = hec["event"]["record_id"]
    if isinstance(record_id, list):
        assert shown == '["a"]'
    else:
        assert shown == expected.get(record_id, record_id)


def test_a_record_without_a_record_id_cannot_be_answered_and_the_rest_are(
    run_handler: Run,
) -> None:
    event = firehose_event([b"one", b"two"])
    del event["records"][0]["recordId"]

    response = run_handler(event)

    assert [r["recordId"] for r in response["records"]] == [event["records"][1]["recordId"]]


@pytest.mark.parametrize(
    "arn", [{"Fn::GetAtt": "x"}, 42, "index=main", "arn:aws:sns:eu-west-1:123456789012:t"]
)
def test_an_unusable_stream_arn_never_becomes_the_source(run_handler: Run, arn: object) -> None:
    event = firehose_event([fixture("lifecycle", "connected.json")])
    event["deliveryStreamArn"] = arn
    (hec,) = all_events(run_handler(event))
    assert hec["source"] == "aws:firehose"


def test_a_record_of_control_characters_stays_small_as_base64(run_handler: Run) -> None:
    """750 KB of control characters would grow ~6x as JSON escapes and fail the record."""
    control = bytes(range(1, 32)) * 24_000  # 744,000 bytes, valid UTF-8, not JSON
    response = run_handler(firehose_event([control]))

    (record,) = response["records"]
    assert record["result"] == "Ok"
    (hec,) = all_events(response)
    assert hec["event"]["payload_encoding"] == "base64"
    assert base64.b64decode(hec["event"]["payload"]) == control
    assert len(record["data"]) < 1.4 * 4 / 3 * len(control)


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_an_event_that_is_not_a_transformation_event_raises(run_handler: Run) -> None:
    with pytest.raises(ValueError, match="'records' is not a list"):
        run_handler({"invocationId": "x", "records": "nope"})


# --- re-ingest through the handler: the real response limit ----------------------------------


@pytest.fixture
def firehose_into_s3() -> Any:
    """A real (moto) delivery stream into S3, so re-put records can be read back."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(
            Bucket="reingest-check",
            CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
        )
        firehose = boto3.client("firehose", region_name="eu-west-1")
        firehose.create_delivery_stream(
            DeliveryStreamName="iot-defender-splunk",
            DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                "BucketARN": "arn:aws:s3:::reingest-check",
                "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
            },
        )
        yield firehose, s3


def test_handler_reputs_overflow_into_its_own_stream_with_the_real_limit(
    firehose_into_s3: Any,
) -> None:
    firehose, s3 = firehose_into_s3
    lambda_handler = handler.make_handler(handler.Runtime(Settings(), firehose=firehose))
    # Each record is ~0.7 MB in and ~2 MB of base64 HEC events out: five cannot all fit.
    payloads = [large_metrics_export(f"pump-{i:04d}", 3000) for i in range(5)]
    event = firehose_event(payloads)

    response = lambda_handler(event, FakeLambdaContext())

    assert len(json.dumps(response)) <= 6_000_000
    assert [r["recordId"] for r in response["records"]] == [r["recordId"] for r in event["records"]]
    dropped = [i for i, r in enumerate(response["records"]) if r["result"] == "Dropped"]
    assert dropped
    landed = b"".join(
        s3.get_object(Bucket="reingest-check", Key=obj["Key"])["Body"].read()
        for obj in s3.list_objects_v2(Bucket="reingest-check").get("Contents", [])
    )
    for i in dropped:
        assert reingest.tag(payloads[i], 1) in landed
    ok_events = sum(
        len(base64.b64decode(r["data"]).splitlines()) for r in response["records"] if r["data"]
    )
    assert ok_events == 3000 * (len(payloads) - len(dropped))


def test_no_reput_starts_when_the_invocation_has_no_time_left() -> None:
    """Less time left than the answer margin: nothing is re-put, the overflow fails at once
    (Firehose backs it up to S3) and the response still goes out before the timeout."""
    firehose = FakeFirehose("iot-defender-splunk")
    lambda_handler = handler.make_handler(handler.Runtime(Settings(), firehose=firehose))
    payloads = [large_metrics_export(f"pump-{i:04d}", 3000) for i in range(5)]
    context = FakeLambdaContext(remaining_ms=int(handler.ANSWER_MARGIN_SECONDS * 1000) + 500)

    response = lambda_handler(firehose_event(payloads), context)

    results = Counter(r["result"] for r in response["records"])
    assert results["Ok"] >= 1
    assert results["ProcessingFailed"] == len(payloads) - results["Ok"]
    assert firehose.calls == []


# --- the seam: what a handler works with is given, never patched in -------------------------

REPO = Path(__file__).resolve().parent.parent
NOT_SOURCE = {".git", "build", "dist", "node_modules"}
HANDLER_MODULE = "transform.handler"


def _metrics_event() -> dict[str, Any]:
    return firehose_event([fixture("metrics_export", "with_dimension.json")])


def test_the_deployed_handler_reads_its_settings_once_per_container(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Settings come from the environment on the first invocation and stay for the container's
    life, as they did when read at import; no invocation re-reads them."""
    monkeypatch.setenv("SPLUNK_INDEX", "iot_first")
    first = all_events(handler.lambda_handler(_metrics_event(), FakeLambdaContext()))
    monkeypatch.setenv("SPLUNK_INDEX", "iot_second")
    second = all_events(handler.lambda_handler(_metrics_event(), FakeLambdaContext()))

    assert {event["index"] for event in first + second} == {"iot_first"}
    assert handler.container_runtime() is handler.container_runtime()


def test_importing_the_handler_reads_no_setting() -> None:
    """A bad setting must not stop the module loading (the demo and bench import it with their
    own settings); the deployed handler reports it on the invocation instead."""
    code = (
        "import transform.handler as h, transform.config as c\n"
        "try:\n"
        "    h.container_runtime()\n"
        "except c.ConfigError as error:\n"
        "    print('refused:', error)\n"
    )
    run = subprocess.run(  # noqa: S603 - this interpreter, importing the repo's own module
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "SPLUNK_INDEX": "Not An Index!"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("refused: SPLUNK_INDEX")


def test_importing_the_handler_loads_no_schema_validator_until_one_is_needed() -> None:
    """jsonschema-rs (and the email, socket and decimal modules it pulls in) costs cold-start
    time a batch the fast path takes entirely never needs: it loads with the first checker,
    which still validates."""
    code = (
        "import sys, transform.handler, transform.validation as v\n"
        "print('jsonschema_rs' in sys.modules, 'email.utils' in sys.modules)\n"
        "print(v.checker('sns')({}) is not None, 'jsonschema_rs' in sys.modules)\n"
    )
    run = subprocess.run(  # noqa: S603 - this interpreter, importing the repo's own module
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["False", "False", "True", "True"]


def test_a_handler_made_with_a_runtime_uses_its_settings_and_client() -> None:
    """The injected client takes the re-puts and the injected settings shape the events, however
    the environment is set: nothing falls back to the container's own."""
    firehose = FakeFirehose("iot-defender-splunk")
    runtime = handler.Runtime(
        Settings(default_index="iot_injected", response_limit_bytes=40_000), firehose=firehose
    )
    payloads = [large_metrics_export(f"pump-{i:04d}", 20) for i in range(10)]

    response = handler.make_handler(runtime)(firehose_event(payloads), FakeLambdaContext())

    reput = [i for i, r in enumerate(response["records"]) if r["result"] == "Dropped"]
    assert reput
    assert firehose.accepted == [reingest.tag(payloads[i], 1) for i in reput]
    assert {event["index"] for event in all_events(response)} == {"iot_injected"}


def _names_bound_to(tree: ast.AST, module: str) -> set[str]:
    """Local names a file gives `module`: `from transform import handler [as x]`, `import ...
    as x`; a plain `import transform.handler` is reached as the dotted name itself."""
    package, _, name = module.rpartition(".")
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == package and node.level == 0:
            names.update(alias.asname or alias.name for alias in node.names if alias.name == name)
        elif isinstance(node, ast.Import):
            names.update(alias.asname or alias.name for alias in node.names if alias.name == module)
    return names


def _patches_of(source: str, module: str) -> list[int]:
    """The lines where a file rebinds something of `module` from outside: attribute assignment,
    setattr / patch.object on the module, or a patch target string naming it."""
    tree = ast.parse(source)
    names = _names_bound_to(tree, module)

    def is_module(node: ast.AST) -> bool:
        return ast.unparse(node) in names

    found: list[int] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt | ast.expr):
            continue
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        rebinds = any(isinstance(t, ast.Attribute) and is_module(t.value) for t in targets)
        if isinstance(node, ast.Call) and node.args:
            first = node.args[0]
            callee = ast.unparse(node.func)
            rebinds = rebinds or (
                callee.endswith(("setattr", "patch.object", "delattr")) and is_module(first)
            )
            rebinds = rebinds or (
                isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and first.value.startswith(f"{module}.")
                and callee.endswith(("patch", "setattr", "delattr"))
            )
        if rebinds:
            found.append(node.lineno)
    return found


def _python_sources() -> list[Path]:
    return [
        path
        for path in sorted(REPO.rglob("*.py"))
        if not any(
            part in NOT_SOURCE or part.startswith(".") for part in path.parts[len(REPO.parts) :]
        )
    ]


def test_nothing_patches_the_handler_module() -> None:
    """The demo, the bench, the datasets and the tests give a handler its runtime: a patched
    module global leaks into every later caller in the process, and hides what a caller needs."""
    assert len(_python_sources()) > 100  # the scan sees the repo, not an empty directory
    patched = {
        f"{path.relative_to(REPO)}:{line}"
        for path in _python_sources()
        for line in _patches_of(path.read_text(encoding="utf-8"), HANDLER_MODULE)
    }
    assert patched == set()


@pytest.mark.parametrize(
    "source",
    [
        "from transform import handler\nhandler.SETTINGS = None\n",
        "from transform import handler as h\nmonkeypatch.setattr(h, 'SETTINGS', None)\n",
        "import transform.handler\nwith mock.patch.object(transform.handler, 'x'): pass\n",
        "mock.patch('transform.handler.SETTINGS', None)\n",
    ],
)
def test_the_patch_scan_finds_each_way_of_patching(source: str) -> None:
    assert _patches_of(source, HANDLER_MODULE) == [source.count("\n")]
