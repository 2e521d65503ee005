"""What a quarantine changed, kept so a release undoes exactly that: against moto's DynamoDB,
with the table the stack creates."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from respond.store import AlreadyRecordedError, QuarantineRecord, QuarantineStore

RECORD = QuarantineRecord(
    thing_name="pump-0017",
    request_id="req-7f3a",
    requested_by="soar:playbook-quarantine",
    reason="exfiltration",
    quarantined_at=1795166400.123,
    deactivated_certificates=["ab12", "cd34"],
)


@pytest.fixture
def table() -> Iterator[Any]:
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name="eu-west-1")
        yield dynamodb.create_table(
            TableName="responder-state",
            KeySchema=[{"AttributeName": "thing_name", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "thing_name", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )


def test_a_record_comes_back_as_it_was_written(table: Any) -> None:
    store = QuarantineStore(table)

    store.begin(RECORD)

    assert store.get("pump-0017") == RECORD
    assert store.get("pump-0018") is None
    item = table.get_item(Key={"thing_name": "pump-0017"})["Item"]
    assert item["quarantined_at_ms"] == 1795166400123  # whole ms: DynamoDB gives Decimals


def test_a_second_quarantine_of_one_thing_cannot_claim_it(table: Any) -> None:
    store = QuarantineStore(table)
    store.begin(RECORD)
    other = QuarantineRecord("pump-0017", "req-other", "analyst", "again", 1.0)

    with pytest.raises(AlreadyRecordedError, match="pump-0017"):
        store.begin(other)

    assert store.get("pump-0017") == RECORD


def test_a_release_deletes_the_record_so_the_thing_can_be_quarantined_again(table: Any) -> None:
    store = QuarantineStore(table)
    store.begin(RECORD)

    store.delete("pump-0017")

    assert store.get("pump-0017") is None
    store.begin(RECORD)
    assert store.get("pump-0017") == RECORD


def test_any_other_error_is_not_taken_for_a_claim() -> None:
    """Throttling or a missing table must fail the request, not pass for "already
    quarantined" (which would skip the change and report success)."""

    class Throttled:
        def put_item(self, **_: Any) -> None:
            error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}
            raise ClientError(error, "PutItem")  # type: ignore[arg-type]

    with pytest.raises(ClientError, match="ProvisionedThroughputExceededException"):
        QuarantineStore(Throttled()).begin(RECORD)


def test_a_read_is_consistent_so_a_quarantine_just_written_is_seen() -> None:
    """An eventually consistent read could miss a record written a moment ago: a second
    request would then quarantine the thing again over it."""
    calls: list[dict[str, Any]] = []

    class Recording:
        def get_item(self, **kwargs: Any) -> dict[str, Any]:
            calls.append(kwargs)
            return {}

    assert QuarantineStore(Recording()).get("pump-0017") is None
    assert calls == [{"Key": {"thing_name": "pump-0017"}, "ConsistentRead": True}]


def test_an_older_item_without_the_optional_fields_still_reads() -> None:
    """Earlier versions wrote added_to_group (always true: a quarantine always adds the thing
    to the group) and no requested_by or reason."""
    item = {
        "thing_name": "pump-0017",
        "request_id": "req-7f3a",
        "quarantined_at_ms": 1795166400123,
        "added_to_group": True,
    }
    assert QuarantineRecord.from_item(item) == QuarantineRecord(
        "pump-0017", "req-7f3a", "", "", 1795166400.123, []
    )


def test_the_summary_says_who_why_when_and_which_certificates() -> None:
    assert RECORD.summary() == {
        "request_id": "req-7f3a",
        "requested_by": "soar:playbook-quarantine",
        "reason": "exfiltration",
        "quarantined_at": 1795166400.123,
        "deactivated_certificates": ["ab12", "cd34"],
    }
