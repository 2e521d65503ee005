"""`iot-defender-splunk backfill-audit`: Device Defender audit APIs stubbed with botocore's
Stubber (moto does not implement audit), PutRecordBatch into the in-memory Firehose fake."""

from __future__ import annotations

import datetime
import functools
import json
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.parsers import create_parser
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st

from collect.audit_findings import collect_task
from devtools.samples import SAMPLES_DIR
from iot_defender_splunk import cli
from iot_defender_splunk.commands import backfill_audit
from shared.firehose import put_records
from tests.fakes import FakeFirehose
from tests.support import by_sourcetype, report_events, transform

API = SAMPLES_DIR / "audit_collector" / "api"
REGION = "eu-west-1"
ACCOUNT = "123456789012"
STREAM = "iot-defender-splunk"
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
NOW = datetime.datetime(2026, 12, 1, 12, tzinfo=datetime.UTC)
SINCE = datetime.datetime(2026, 11, 15, tzinfo=datetime.UTC)
UNTIL = datetime.datetime(2026, 11, 30, tzinfo=datetime.UTC)
SCHEDULED = "5c1f0e9a3b7d42e8a6f4d2c19b8e7a30"  # non-compliant: its findings are the three pages
IN_PROGRESS = "e7b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0"
ON_DEMAND = "9a8b7c6d5e4f30211f2e3d4c5b6a7988"  # compliant apart from a failed check: no findings
DESCRIBED = {
    SCHEDULED: "describe_audit_task_scheduled_non_compliant.json",
    ON_DEMAND: "describe_audit_task_on_demand_compliant.json",
}
TASK = "aws:iot:defender:audit:task"
CHECK = "aws:iot:defender:audit:check"
FINDING = "aws:iot:defender:audit:finding"


def wire(name: str) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads((API / name).read_text(encoding="utf-8"))
    return answer


def boto_answer(client: Any, method: str, name: str) -> dict[str, Any]:
    """A fixture (the service's JSON) parsed by botocore as boto3 hands it over: datetimes."""
    operation = client.meta.service_model.operation_model(client.meta.method_to_api_mapping[method])
    response = {"body": (API / name).read_bytes(), "headers": {}, "status_code": 200}
    parsed: dict[str, Any] = create_parser("rest-json").parse(response, operation.output_shape)
    parsed.pop("ResponseMetadata", None)
    return parsed


@dataclass
class Aws:
    iot: Any
    iot_stub: Stubber
    sts_stub: Stubber
    firehose: FakeFirehose
    made: list[str]  # the clients the command asked for

    def list_tasks(self) -> None:
        window = {"startTime": SINCE, "endTime": UNTIL, "maxResults": 250}
        first = "list_audit_tasks_page1.json"
        self.iot_stub.add_response(
            "list_audit_tasks", boto_answer(self.iot, "list_audit_tasks", first), window
        )
        self.iot_stub.add_response(
            "list_audit_tasks",
            boto_answer(self.iot, "list_audit_tasks", "list_audit_tasks_page2.json"),
            {**window, "nextToken": wire(first)["nextToken"]},
        )

    def describe(self, task_id: str) -> None:
        answer = boto_answer(self.iot, "describe_audit_task", DESCRIBED[task_id])
        self.iot_stub.add_response("describe_audit_task", answer, {"taskId": task_id})

    def findings(self) -> None:
        token = None
        for number in (1, 2, 3):
            params = {"taskId": SCHEDULED, "maxResults": 250}
            if token:
                params["nextToken"] = token
            name = f"list_audit_findings_page{number}.json"
            self.iot_stub.add_response(
                "list_audit_findings", boto_answer(self.iot, "list_audit_findings", name), params
            )
            token = wire(name).get("nextToken")

    def everything(self) -> None:
        self.list_tasks()
        self.describe(SCHEDULED)
        self.findings()
        self.describe(ON_DEMAND)

    def put(self) -> list[dict[str, Any]]:
        return [json.loads(payload) for call in self.firehose.calls for payload in call]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """Stubbed IoT and STS clients and a Firehose fake, handed out by every boto3 session."""
    monkeypatch.setattr(backfill_audit, "utc_now", lambda: NOW)
    iot = boto3.client("iot", region_name=REGION)
    sts = boto3.client("sts", region_name=REGION)
    fake = Aws(iot, Stubber(iot), Stubber(sts), FakeFirehose(STREAM), made=[])
    fake.sts_stub.add_response(
        "get_caller_identity",
        {"UserId": "AIDAEXAMPLE", "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/ops"},
    )
    clients = {"iot": iot, "sts": sts, "firehose": fake.firehose}

    def client(self: boto3.Session, name: str, **kwargs: Any) -> Any:
        fake.made.append(name)
        return clients[name]

    monkeypatch.setattr(boto3.Session, "client", client)
    with fake.iot_stub, fake.sts_stub:
        yield fake


def main(*argv: str) -> int:
    window = ["--since", SINCE.isoformat(), "--until", UNTIL.isoformat()]
    return cli.main(["backfill-audit", *window, *argv])


def one_line(text: str) -> str:
    assert text.count("\n") == 1, text
    assert "Traceback" not in text
    return text


def test_each_finished_task_is_put_as_its_notification_followed_by_its_findings(aws, capsys):
    aws.everything()

    assert main("--stream", STREAM) == 0

    aws.iot_stub.assert_no_pending_responses()  # every page read, no findings for ON_DEMAND
    records = aws.put()
    assert [r.get("taskId") for r in records] == [SCHEDULED] * 7 + [ON_DEMAND]
    scheduled, *findings, on_demand = records
    assert scheduled["taskStatus"] == "COMPLETED"
    assert scheduled["scheduledAuditName"] == "daily-fleet-audit"
    assert scheduled["accountId"] == ACCOUNT
    assert scheduled["taskStartTime"] == 1795226412117  # epoch ms, as in the notification
    assert scheduled["nonCompliantChecksCount"] == 5
    assert scheduled["totalChecksCount"] == 6
    assert [finding["findingId"] for finding in findings] == [
        finding["findingId"]
        for number in (1, 2, 3)
        for finding in wire(f"list_audit_findings_page{number}.json")["findings"]
    ]
    assert "scheduledAuditName" not in on_demand
    assert on_demand["failedChecksCount"] == 1
    out = capsys.readouterr().out
    assert out == (
        "2 audit tasks (9 checks), 6 findings: put 8 records into iot-defender-splunk; "
        "1 tasks still in progress skipped\n"
    )


def test_the_findings_put_are_byte_for_byte_what_the_stack_collector_puts(aws, monkeypatch):
    """Differential: the CLI and the findings collector Lambda must build the same records."""
    aws.everything()
    assert main("--stream", STREAM) == 0
    backfilled = [payload for call in aws.firehose.calls for payload in call][1:7]

    collector_firehose = FakeFirehose(STREAM)
    monkeypatch.setenv("DELIVERY_STREAM_NAME", STREAM)
    aws.findings()  # the same pages again, now for the collector
    collect_task(SCHEDULED, aws.iot, collector_firehose)

    assert backfilled == [payload for call in collector_firehose.calls for payload in call]


def test_the_transform_decodes_a_backfilled_task_as_a_task_and_one_check_per_check(aws):
    aws.everything()
    assert main("--stream", STREAM) == 0
    scheduled = aws.firehose.calls[0]

    events = report_events(transform(scheduled))

    assert len(events) == 7
    (task,) = by_sourcetype(events, TASK)
    assert task["time"] == pytest.approx(1795226412.117)
    assert task["fields"] == {
        "task_id": SCHEDULED,
        "task_type": "SCHEDULED_AUDIT_TASK",
        "task_status": "COMPLETED",
    }
    checks = by_sourcetype(events, CHECK)
    expiring = next(
        c for c in checks if c["event"]["checkName"] == "DEVICE_CERTIFICATE_EXPIRING_CHECK"
    )
    assert expiring["fields"]["check_run_status"] == "COMPLETED_NON_COMPLIANT"
    assert expiring["event"]["suppressedNonCompliantResourcesCount"] == 1
    assert {c["event"]["checkName"] for c in checks} == set(
        wire(DESCRIBED[SCHEDULED])["auditDetails"]
    )
    assert by_sourcetype(events, FINDING) == []


def test_a_dry_run_reads_and_counts_and_puts_nothing(aws, capsys):
    aws.everything()

    assert main("--dry-run") == 0

    assert aws.firehose.calls == []
    assert "firehose" not in aws.made
    assert capsys.readouterr().out == (
        "2 audit tasks (9 checks), 6 findings: would put 8 records into the stream; "
        "1 tasks still in progress skipped\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", "2026-08-01", "--stream", STREAM], "older than the 90 days"),
        (["--since", "2026-11-20", "--until", "2026-11-20", "--stream", STREAM], "before --until"),
        (["--since", "2026-11-20"], "give --stream"),
    ],
)
def test_a_bad_range_or_a_missing_stream_is_one_line_before_any_call(aws, capsys, argv, message):
    assert cli.main(["backfill-audit", *argv]) == 1

    err = one_line(capsys.readouterr().err)
    assert err.startswith("iot-defender-splunk backfill-audit: error: ")
    assert message in err
    assert aws.made == []


def test_the_default_range_is_the_last_89_days(aws):
    window = {"startTime": NOW - datetime.timedelta(days=89), "endTime": NOW, "maxResults": 250}
    aws.iot_stub.add_response("list_audit_tasks", {"tasks": []}, window)

    assert cli.main(["backfill-audit", "--stream", STREAM]) == 0

    aws.iot_stub.assert_no_pending_responses()


def test_an_aws_error_is_one_line_after_the_summary_of_what_was_put(aws, capsys):
    aws.list_tasks()
    aws.describe(SCHEDULED)
    aws.iot_stub.add_client_error(
        "list_audit_findings",
        service_error_code="ThrottlingException",
        service_message="Rate exceeded",
    )

    assert main("--stream", STREAM) == 1

    captured = capsys.readouterr()
    assert one_line(captured.err) == (
        "iot-defender-splunk backfill-audit: error: AWS: ListAuditFindings: "
        "ThrottlingException: Rate exceeded\n"
    )
    assert captured.out.startswith("1 audit tasks (6 checks), 0 findings: put 1 records")
    assert [r["taskId"] for r in aws.put()] == [SCHEDULED]


def test_a_record_firehose_keeps_rejecting_fails_the_run_naming_the_task(aws, capsys, monkeypatch):
    sleeps: list[float] = []
    no_sleep = functools.partial(put_records, sleep=sleeps.append)
    monkeypatch.setattr(backfill_audit, "put_records", no_sleep)
    aws.list_tasks()
    aws.describe(SCHEDULED)
    aws.firehose.key = lambda payload: json.loads(payload).get("taskId")
    aws.firehose.failures = {SCHEDULED: 100}  # rejected through every retry

    assert main("--stream", STREAM) == 1

    err = one_line(capsys.readouterr().err)
    assert err.endswith(
        f"error: Firehose did not accept 1 of 1 records of audit task {SCHEDULED}; rerun "
        "(what was put is put again: dedup taskId / findingId)\n"
    )
    assert len(sleeps) == 7  # retried with backoff before giving up
    assert aws.firehose.accepted == []


def test_help_says_what_it_does_and_exits_0(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["backfill-audit", "--help"])
    assert exit_.value.code == 0
    assert "90 days" in capsys.readouterr().out


CHECK_NAMES = st.text(
    alphabet=string.ascii_uppercase + string.digits + "_", min_size=1, max_size=40
)
DETAILS = st.fixed_dictionaries(
    {
        "checkRunStatus": st.sampled_from(
            ["COMPLETED_COMPLIANT", "COMPLETED_NON_COMPLIANT", "FAILED", "CANCELED"]
        ),
        "totalResourcesCount": st.integers(0, 10**6),
        "nonCompliantResourcesCount": st.integers(0, 10**6),
    }
)


@given(
    details=st.dictionaries(CHECK_NAMES, DETAILS, max_size=20),
    started=st.datetimes(
        min_value=datetime.datetime(2020, 1, 1), max_value=datetime.datetime(2030, 1, 1)
    ),
    status=st.sampled_from(["COMPLETED", "FAILED", "CANCELED"]),
)
def test_the_notification_keeps_every_check_once_and_the_start_to_the_millisecond(
    details, started, status
):
    described = {
        "taskStatus": status,
        "taskType": "ON_DEMAND_AUDIT_TASK",
        "taskStartTime": started.replace(tzinfo=datetime.UTC),
        "auditDetails": details,
    }

    record = backfill_audit.notification("t-1", described, ACCOUNT)

    assert {
        d["checkName"]: {k: v for k, v in d.items() if k != "checkName"}
        for d in record["auditDetails"]
    } == details
    assert len(record["auditDetails"]) == len(details)
    micros = (described["taskStartTime"] - EPOCH) // datetime.timedelta(microseconds=1)
    assert 0 <= micros - record["taskStartTime"] * 1000 < 1000  # the millisecond it falls in
    assert backfill_audit.has_findings(record) == any(
        d["checkRunStatus"] == "COMPLETED_NON_COMPLIANT" for d in details.values()
    )


DEAD_LETTERS = SAMPLES_DIR / "audit_collector" / "dead_letter"


def named(*argv: str) -> int:
    """The command without a time range: the tasks come from the arguments."""
    return cli.main(["backfill-audit", "--stream", STREAM, *argv])


def test_a_named_task_is_described_and_put_with_its_findings_without_listing_tasks(aws, capsys):
    aws.describe(SCHEDULED)  # no ListAuditTasks queued: listing would be a StubError
    aws.findings()

    assert named("--task-id", SCHEDULED) == 0

    aws.iot_stub.assert_no_pending_responses()
    assert [r.get("taskId") for r in aws.put()] == [SCHEDULED] * 7
    assert capsys.readouterr().out.startswith("1 audit tasks (6 checks), 6 findings: put 7")


def test_the_task_of_a_dead_letter_continuation_is_backfilled(aws):
    aws.describe(SCHEDULED)
    aws.findings()
    path = DEAD_LETTERS / "receive_message_stalled_continuation.json"

    assert named("--from-dead-letter", str(path)) == 0

    aws.iot_stub.assert_no_pending_responses()
    assert len(aws.put()) == 7


def test_dead_letter_messages_name_their_tasks_once_each() -> None:
    continuation = (DEAD_LETTERS / "receive_message_stalled_continuation.json").read_text()
    notification = (DEAD_LETTERS / "message_sns_notification_timed_out.json").read_text()
    both = json.dumps(
        {"Messages": [*json.loads(continuation)["Messages"], json.loads(notification)]}
    )

    assert backfill_audit.dead_letter_task_ids(continuation) == [SCHEDULED]
    assert backfill_audit.dead_letter_task_ids(notification) == [SCHEDULED]
    assert backfill_audit.dead_letter_task_ids(both) == [SCHEDULED]  # one task, put once
    body = json.loads(notification)["Body"]
    assert backfill_audit.dead_letter_task_ids(body) == [SCHEDULED]  # a bare message body


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ((DEAD_LETTERS / "receive_message_inventory_schedule_event.json").read_text(), "no audit"),
        ("{not json", "the file is not JSON"),
        ('{"Messages": [{"Body": "{oops"}]}', "a message body is not JSON"),
        ('{"Messages": "x"}', "not a dead-letter message"),
        ('{"resume": "audit#a/../b"}', "no audit task id"),
    ],
)
def test_a_dead_letter_file_without_a_task_is_one_line_before_any_call(
    aws, capsys, tmp_path, content, message
):
    path = tmp_path / "dead-letter.json"
    path.write_text(content)

    assert named("--from-dead-letter", str(path)) == 1

    err = one_line(capsys.readouterr().err)
    assert f"error: --from-dead-letter {path}: " in err
    assert message in err
    assert aws.made == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--task-id", SCHEDULED, "--since", "2026-11-20"], "leave out --since/--until"),
        (["--from-dead-letter", "/nonexistent/dead-letter.json"], "No such file"),
    ],
)
def test_bad_task_arguments_are_one_line_before_any_call(aws, capsys, argv, message):
    assert named(*argv) == 1

    assert message in one_line(capsys.readouterr().err)
    assert aws.made == []


def test_a_task_id_the_api_would_refuse_is_a_usage_error(aws, capsys):
    with pytest.raises(SystemExit) as exit_:
        named("--task-id", "a/../b")

    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --task-id: 'a/../b' is not an audit task id" in err
    assert "Traceback" not in err
    assert aws.made == []
