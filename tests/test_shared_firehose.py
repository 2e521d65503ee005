"""PutRecordBatch with limits, partial-failure retries and backoff."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from shared.firehose import (
    MAX_BATCH_BYTES,
    MAX_RECORD_BYTES,
    PUT_CALL_SECONDS,
    encode,
    encode_cleaned,
    put_client_options,
    put_records,
    stream_name_from_arn,
)
from tests.fakes import FakeFirehose

STREAM = "iot-defender-splunk"

# --- encode_cleaned: what UTF-8 cannot carry is replaced, everything else is encode's bytes ---

# Any text, lone surrogates (category Cs) included, as keys and values.
texts = st.text(st.characters(codec=None, categories=None), max_size=12)
records = st.dictionaries(texts, texts | st.lists(texts, max_size=3), max_size=4)


@pytest.mark.property
@given(record=records)
def test_encode_cleaned_differs_from_encode_only_by_replacing_lone_surrogates(
    record: dict[str, Any],
) -> None:
    cleaned, replaced = encode_cleaned(record)
    text = json.dumps(record, ensure_ascii=False)
    assert replaced == sum(0xD800 <= ord(char) <= 0xDFFF for char in text)
    if replaced:
        with pytest.raises(UnicodeEncodeError):
            encode(record)
    else:
        assert cleaned == encode(record)
    decoded = json.loads(cleaned.decode("utf-8"))  # always valid UTF-8 JSON
    assert decoded.keys() == {_clean(key) for key in record}


def _clean(text: str) -> str:
    return "".join("\ufffd" if 0xD800 <= ord(char) <= 0xDFFF else char for char in text)


def _put(client: Any, payloads: list[bytes], **kwargs: Any) -> tuple[list[int], list[float]]:
    sleeps: list[float] = []
    failed = put_records(client, "iot-defender-splunk", payloads, sleep=sleeps.append, **kwargs)
    return failed, sleeps


def test_batches_respect_the_500_record_limit() -> None:
    client = FakeFirehose(STREAM)
    failed, _ = _put(client, [b"x%d" % i for i in range(1201)])
    assert failed == []
    assert [len(call) for call in client.calls] == [500, 500, 201]


def test_batches_respect_the_4_mib_limit() -> None:
    client = FakeFirehose(STREAM)
    payloads = [bytes([65 + i]) * 900_000 for i in range(10)]
    failed, _ = _put(client, payloads)
    assert failed == []
    assert all(sum(map(len, call)) <= MAX_BATCH_BYTES for call in client.calls)
    assert [len(call) for call in client.calls] == [4, 4, 2]
    assert [p for call in client.calls for p in call] == payloads


def test_only_failed_entries_are_retried_with_growing_jittered_backoff() -> None:
    client = FakeFirehose(STREAM, failures={b"b": 2, b"d": 1})
    failed, sleeps = _put(client, [b"a", b"b", b"c", b"d"], base_delay=0.1)
    assert failed == []
    assert client.calls == [[b"a", b"b", b"c", b"d"], [b"b", b"d"], [b"b"]]
    assert len(sleeps) == 2
    assert 0.1 <= sleeps[0] <= 0.2
    assert 0.2 <= sleeps[1] <= 0.4


def test_a_failed_call_retries_the_whole_chunk() -> None:
    client = FakeFirehose(STREAM, raises=1)
    failed, _ = _put(client, [b"a", b"b"])
    assert failed == []
    assert client.calls == [[b"a", b"b"], [b"a", b"b"]]


def test_gives_up_after_max_attempts_and_says_which() -> None:
    client = FakeFirehose(STREAM, failures={b"b": 100})
    failed, sleeps = _put(client, [b"a", b"b", b"c"], max_attempts=4)
    assert failed == [1]
    assert len(client.calls) == 4
    assert len(sleeps) == 3


def test_a_record_over_the_firehose_limit_is_never_sent() -> None:
    client = FakeFirehose(STREAM)
    failed, _ = _put(client, [b"a", b"x" * (MAX_RECORD_BYTES + 1), b"c"])
    assert failed == [1]
    assert client.calls == [[b"a", b"c"]]


def test_a_put_client_call_is_one_attempt_that_ends_within_put_call_seconds() -> None:
    """A deadline counts PUT_CALL_SECONDS per call: botocore must not retry inside a call, and
    the timeouts must end a stalled one sooner, or the last call overruns the invocation."""
    client: Any = boto3.client(
        "firehose", region_name="eu-west-1", config=Config(**put_client_options())
    )
    config = client.meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert config.connect_timeout + config.read_timeout < PUT_CALL_SECONDS


def test_real_client_request_shape_and_partial_failure() -> None:
    client = boto3.client(
        "firehose",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        stubber.add_response(
            "put_record_batch",
            {
                "FailedPutCount": 1,
                "RequestResponses": [
                    {"RecordId": "49546986683135544286507457936321625675700192471156785154"},
                    {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."},
                ],
            },
            {
                "DeliveryStreamName": "iot-defender-splunk",
                "Records": [{"Data": b"a"}, {"Data": b"b"}],
            },
        )
        stubber.add_response(
            "put_record_batch",
            {
                "FailedPutCount": 0,
                "RequestResponses": [{"RecordId": "4954698668313554428650745793"}],
            },
            {"DeliveryStreamName": "iot-defender-splunk", "Records": [{"Data": b"b"}]},
        )
        failed, _ = _put(client, [b"a", b"b"])
        stubber.assert_no_pending_responses()
    assert failed == []


def test_against_moto_every_record_is_accepted() -> None:
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="backup")
        client = boto3.client("firehose", region_name="eu-west-1")
        client.create_delivery_stream(
            DeliveryStreamName="iot-defender-splunk",
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                "BucketARN": "arn:aws:s3:::backup",
            },
        )
        failed, sleeps = _put(client, [b"%d" % i for i in range(700)])
    assert failed == []
    assert sleeps == []


@pytest.mark.parametrize(
    ("arn", "name"),
    [
        (
            "arn:aws:firehose:eu-west-1:123456789012:deliverystream/iot-defender-splunk",
            "iot-defender-splunk",
        ),
        ("arn:aws-cn:firehose:cn-north-1:123456789012:deliverystream/s", "s"),
        ("arn:aws-us-gov:firehose:us-gov-west-1:123456789012:deliverystream/a.b_c-d", "a.b_c-d"),
        ("arn:aws:firehose:eu-west-1:123456789012:deliverystream/", None),
        ("arn:aws:firehose:eu-west-1:123456789012:deliverystream/a/b", None),
        ("arn:aws:firehose:eu-west-1:12345:deliverystream/short-account", None),
        ("arn:aws:s3:eu-west-1:123456789012:deliverystream/not-firehose", None),
        ("arn:aws:firehose:eu-west-1:123456789012:deliverystream/" + "x" * 65, None),
        ("arn:aws:firehose:eu-west-1:123456789012:deliverystream/" + "x" * 64, "x" * 64),
        ("arn:aws:firehose:eu-west-1:1234567890123:deliverystream/s", None),
        ("arn:aws:firehose:eu-west:123456789012:deliverystream/s", None),
        ("arn:aws:firehose:eu-west-1:123456789012:stream/s", None),
        ("arn:AWS:firehose:eu-west-1:123456789012:deliverystream/s", None),
        ("xarn:aws:firehose:eu-west-1:123456789012:deliverystream/s", None),
        ("arn:aws:firehose:eu-west-1:123456789012:deliverystream/s\n", None),
        ("iot-defender-splunk", None),
        ("", None),
        (None, None),
        ({"arn": "arn:aws:firehose:eu-west-1:123456789012:deliverystream/s"}, None),
    ],
)
def test_stream_name_from_arn(arn: object, name: str | None) -> None:
    assert stream_name_from_arn(arn) == name


class Answering:
    """A client that answers every PutRecordBatch with what ``answer`` makes of the records."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[list[bytes]] = []

    def put_record_batch(self, *, DeliveryStreamName: str, Records: Any) -> Any:  # noqa: N803
        self.calls.append([record["Data"] for record in Records])
        return self.answer(len(Records))


def _ids(n: int) -> list[dict[str, str]]:
    return [{"RecordId": f"id-{i}"} for i in range(n)]


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        # The defect: a count of failures with no entry saying which was taken as success.
        ("count-without-error-codes", lambda n: {"FailedPutCount": 1, "RequestResponses": _ids(n)}),
        ("entries-none", lambda n: {"FailedPutCount": 1, "RequestResponses": None}),
        ("entries-of-none", lambda n: {"FailedPutCount": 0, "RequestResponses": [None] * n}),
        ("entry-without-record-id", lambda n: {"FailedPutCount": 0, "RequestResponses": [{}] * n}),
        ("response-none", lambda n: None),
        ("entries-too-few", lambda n: {"FailedPutCount": 1, "RequestResponses": _ids(n - 1)}),
        (
            "error-codes-beside-record-ids",
            lambda n: {"RequestResponses": [{"RecordId": "id", "ErrorCode": "E"}] * n},
        ),
    ],
)
def test_an_answer_that_cannot_prove_delivery_is_a_failure(name: str, answer: Any) -> None:
    client = Answering(answer)
    failed, _ = _put(client, [b"a", b"b"], max_attempts=3)
    assert failed == [0, 1], name
    assert client.calls == [[b"a", b"b"]] * 3


def test_an_answer_naming_the_failed_entry_retries_only_that_one() -> None:
    def answer(n: int) -> Any:
        if n == 2:
            return {
                "FailedPutCount": 1,
                "RequestResponses": [{"RecordId": "x"}, {"ErrorCode": "E"}],
            }
        return {"FailedPutCount": 0, "RequestResponses": _ids(n)}

    client = Answering(answer)
    failed, _ = _put(client, [b"a", b"b"])
    assert failed == []
    assert client.calls == [[b"a", b"b"], [b"b"]]


class Clock:
    """Time that moves only when slept or when a call takes it."""

    def __init__(self) -> None:
        self.now = 100.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_no_call_or_backoff_starts_that_could_end_after_the_deadline() -> None:
    clock = Clock()

    def slow_failure(n: int) -> Any:
        clock.now += 4.0  # each call takes 4 s and rejects everything
        return {"FailedPutCount": n, "RequestResponses": [{"ErrorCode": "E"}] * n}

    client = Answering(slow_failure)
    failed = put_records(
        client,
        STREAM,
        [b"a"],
        base_delay=1.0,
        max_delay=1.0,
        sleep=clock.sleep,
        clock=lambda: clock.now,
        deadline=111.0,
        call_seconds=5.0,
    )
    assert failed == [0]
    # 100 -> call to 104 -> backoff <= 1 s -> call to <= 109 -> a third call could end at 115.
    assert len(client.calls) == 2
    assert clock.now <= 111.0


def test_with_no_time_left_nothing_is_called() -> None:
    client = FakeFirehose(STREAM)
    failed = put_records(
        client, STREAM, [b"a", b"b"], deadline=10.0, call_seconds=8.0, clock=lambda: 5.0
    )
    assert failed == [0, 1]
    assert client.calls == []


# PutRecordBatch's limits as the API reference states them, written out here rather than read
# from shared.firehose, so a wrong constant there cannot agree with itself.
RECORD_LIMIT = 1_000 * 1_024  # 1,000 KiB per record
CALL_LIMIT = 4 * 1_024 * 1_024  # 4 MiB per call
CALL_RECORDS = 500


def test_a_record_of_exactly_the_record_limit_is_sent_one_byte_more_is_not() -> None:
    client = FakeFirehose(STREAM)
    at_limit, over = b"a" * RECORD_LIMIT, b"b" * (RECORD_LIMIT + 1)

    failed, _ = _put(client, [at_limit, over])

    assert failed == [1]
    assert client.calls == [[at_limit]]


@pytest.mark.parametrize(("extra", "calls"), [(0, 2), (1, 3)], ids=["at-the-limit", "a-byte-over"])
def test_a_call_holds_exactly_4_mib(extra: int, calls: int) -> None:
    """Twice: four records at the record limit and one that tops the call up to 4 MiB, to
    the byte, are two calls; a byte more in each and the records spill into a third."""
    call = [bytes([65 + i]) * RECORD_LIMIT for i in range(4)]
    call.append(b"e" * (CALL_LIMIT - 4 * RECORD_LIMIT + extra))
    payloads = call + [payload.lower() for payload in call]
    client = FakeFirehose(STREAM)

    failed, _ = _put(client, payloads)

    assert failed == []
    assert len(client.calls) == calls
    assert [p for call in client.calls for p in call] == payloads


@pytest.mark.parametrize(("count", "calls"), [(500, [500]), (501, [500, 1])])
def test_a_call_holds_exactly_500_records(count: int, calls: list[int]) -> None:
    client = FakeFirehose(STREAM)
    failed, _ = _put(client, [b"%d" % i for i in range(count)])
    assert failed == []
    assert [len(call) for call in client.calls] == calls


@pytest.mark.parametrize(
    ("jitter", "curve"),
    [
        (0.0, [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]),  # half of each step, the least
        (1.0, [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]),  # the whole step, capped at max_delay
    ],
    ids=["least-jitter", "most-jitter"],
)
def test_the_backoff_doubles_from_the_base_delay_up_to_the_cap_with_jitter_halving_it(
    monkeypatch: pytest.MonkeyPatch, jitter: float, curve: list[float]
) -> None:
    """Throttled callers back off apart (jitter) but never wait past max_delay: the waits
    between eight attempts at the defaults (50 ms base, 2 s cap)."""
    monkeypatch.setattr("random.random", lambda: jitter)
    client = FakeFirehose(STREAM, failures={b"a": 100})

    failed, sleeps = _put(client, [b"a"])

    assert failed == [0]
    assert sleeps == pytest.approx(curve)


def test_a_count_of_no_failures_is_trusted_without_entries() -> None:
    """The count is the API's own summary: zero failed means all were accepted, even when
    the per-record entries are missing (a duplicate retry would be the only gain)."""
    client = Answering(lambda n: {"FailedPutCount": 0})
    failed, _ = _put(client, [b"a", b"b"])
    assert failed == []
    assert client.calls == [[b"a", b"b"]]


@pytest.mark.parametrize("count", [True, -1, "1", 1.0], ids=["bool", "negative", "text", "float"])
def test_a_count_that_is_not_a_count_proves_nothing(count: object) -> None:
    """Then the entries decide: all accepted is accepted; without entries, nothing is."""
    with_entries = Answering(lambda n: {"FailedPutCount": count, "RequestResponses": _ids(n)})
    without = Answering(lambda n: {"FailedPutCount": count})

    assert _put(with_entries, [b"a"], max_attempts=2)[0] == []
    assert _put(without, [b"a"], max_attempts=2)[0] == [0]
    assert (len(with_entries.calls), len(without.calls)) == (1, 2)


def test_without_call_seconds_a_call_may_start_at_the_deadline_itself() -> None:
    """call_seconds defaults to 0: with a deadline alone, only backoffs are bounded."""
    client = FakeFirehose(STREAM)
    failed = put_records(client, STREAM, [b"a"], deadline=5.0, clock=lambda: 5.0)
    assert failed == []
    assert client.calls == [[b"a"]]


@pytest.mark.parametrize(
    ("answer", "logged"),
    [
        (
            lambda n: {"FailedPutCount": 2, "RequestResponses": [{"ErrorCode": "E"}, *_ids(n - 1)]},
            "PutRecordBatch reported 2 failed but 1 entries show it; retrying all 3",
        ),
        (lambda n: "OK", "PutRecordBatch answered str, not a response"),
    ],
    ids=["count-over-entries", "not-a-response"],
)
def test_an_answer_retried_whole_says_why_in_the_log(
    answer: Any, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="shared.firehose"):
        _put(Answering(answer), [b"a", b"b", b"c"], max_attempts=1)
    assert [record.getMessage() for record in caplog.records] == [logged]


def test_a_failed_call_says_how_many_records_and_why_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="shared.firehose"):
        _put(FakeFirehose(STREAM, raises=1), [b"a", b"b"], max_attempts=1)
    assert [record.getMessage() for record in caplog.records] == [
        "PutRecordBatch of 2 records failed: ServiceUnavailableException: the call itself failed"
    ]


def test_a_record_is_compact_utf8_json_with_datetimes_as_epoch_seconds() -> None:
    """What the collectors put: the transform reads it, and compact is fewer bytes billed."""
    when = datetime(2026, 11, 20, 9, 20, 3, 500000, tzinfo=UTC)
    record = {"thingName": "cámara-1", "at": when, "tags": ["a", "b"]}

    assert encode(record) == (
        '{"thingName":"cámara-1","at":1795166403.5,"tags":["a","b"]}'.encode()
    )


def test_a_value_json_cannot_hold_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match=r"^cannot encode object as JSON$"):
        encode({"x": object()})
