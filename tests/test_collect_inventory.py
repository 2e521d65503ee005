"""The inventory collector: source choice, paging, group-lookup cap, schema fit and delivery.

moto stands in for AWS where it is faithful (registry, thing groups, Firehose to S3). Where it
is not (SearchIndex paging and connectivity: moto never pages and gives seconds, not ms; errors
such as AccessDenied or IndexNotReady) botocore's Stubber checks the exact requests instead.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from collect import delivery, inventory
from shared.names import thing_name
from shared.settings import ConfigError
from tests.checkpoints import Engine, WallClock
from tests.collector_time import record_put_waits
from tests.fakes import FakeFirehose
from tests.support import (
    SAMPLES_DIR,
    FakeLambdaContext,
    all_events,
    by_sourcetype,
    firehose_event,
)
from transform.sourcetypes import THING, UNPARSED
from transform.validation import checker

Run = Callable[[dict[str, Any]], dict[str, Any]]

FIXTURES = SAMPLES_DIR / "inventory_collector"
REGION = "eu-west-1"
STREAM = "iot-defender-splunk"


def thing_of(payload: bytes) -> str:
    """The key the fake Firehose rejects records by: the thing each record describes."""
    return str(json.loads(payload)["thing"]["thingName"])


def names_per_call(firehose: FakeFirehose) -> list[list[str]]:
    """The things of each PutRecordBatch call, accepted or not."""
    return [[record["thing"]["thingName"] for record in call] for call in firehose.call_documents]


BUCKET = "iot-defender-splunk-inventory"
ACCOUNT = "123456789012"
COLLECTED_AT = 1_795_167_000_412
NEXT_TOKEN = json.loads(
    (FIXTURES / "iot" / "search_index_first_page_with_connectivity.json").read_text()
)["nextToken"]
SEARCH = {"indexName": "AWS_Things", "queryString": "thingName:*", "maxResults": 100}

check_thing = checker("thing")


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DELIVERY_STREAM_NAME", STREAM)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("MAX_GROUP_LOOKUPS", raising=False)


@pytest.fixture(autouse=True)
def engine(monkeypatch: pytest.MonkeyPatch) -> Engine:
    """The checkpoint table (in memory) and the continuation invokes, recorded."""
    return Engine(monkeypatch, inventory, WallClock())


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Firehose backoff is recorded instead of slept."""
    return record_put_waits(monkeypatch)


# --- fakes and helpers -----------------------------------------------------------------------


class FakeFleetIndex:
    """An IoT client whose fleet index (with connectivity) serves the two fixture pages."""

    def __init__(self, log: list[str] | None = None, pages: list[Any] | None = None):
        self.log = log if log is not None else []
        self.pages = pages or [
            load("iot/search_index_first_page_with_connectivity.json"),
            load("iot/search_index_last_page.json"),
        ]
        self.searches: list[dict[str, Any]] = []

    def get_indexing_configuration(self) -> Any:
        return load("iot/get_indexing_configuration_registry_with_connectivity.json")

    def search_index(self, **request: Any) -> Any:
        self.searches.append(request)
        self.log.append("search")
        return self.pages[min(len(self.searches), len(self.pages)) - 1]


def stubbed_iot() -> tuple[Any, Stubber]:
    client = boto3.client(
        "iot", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    return client, Stubber(client)


def collect_stubbed(
    iot: Any, stubber: Stubber, sink: Any, *, max_group_lookups: int
) -> inventory.Summary:
    """One run against the stubbed client; every queued response must have been used."""
    with stubber:
        summary = inventory.collect_inventory(
            iot, sink, max_group_lookups=max_group_lookups, collected_at=COLLECTED_AT
        )
        stubber.assert_no_pending_responses()
    return summary


def indexing(mode: str, connectivity: str = "OFF") -> dict[str, Any]:
    return {
        "thingIndexingConfiguration": {
            "thingIndexingMode": mode,
            "thingConnectivityIndexingMode": connectivity,
        }
    }


def things(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {record["thing"]["thingName"]: record["thing"] for record in records}


def emf(out: str) -> list[dict[str, Any]]:
    lines = out.splitlines()
    return [json.loads(line) for line in lines if line.startswith("{") and '"_aws"' in line]


def metric(out: str, name: str) -> list[float]:
    values: list[float] = next(doc[name] for doc in emf(out) if name in doc)
    return values


def transformed(run_handler: Run, payloads: list[bytes]) -> list[dict[str, Any]]:
    """The HEC events the real transform handler makes of the delivered payloads."""
    response = run_handler(firehose_event(payloads))
    assert [record["result"] for record in response["records"]] == ["Ok"] * len(payloads)
    events = all_events(response)
    assert by_sourcetype(events, UNPARSED) == []
    return events


# --- moto: registry and fleet index, delivered through Firehose to S3 -----------------------


@dataclass
class Aws:
    iot: Any
    s3: Any

    def add_thing(
        self,
        name: str,
        thing_type: str | None = None,
        attributes: dict[str, str] | None = None,
        groups: tuple[str, ...] = (),
    ) -> None:
        kwargs: dict[str, Any] = {"thingName": name}
        if thing_type:
            kwargs["thingTypeName"] = thing_type
        if attributes is not None:
            kwargs["attributePayload"] = {"attributes": attributes}
        self.iot.create_thing(**kwargs)
        for group in groups:
            self.iot.add_thing_to_thing_group(thingGroupName=group, thingName=name)

    def delivered(self) -> list[bytes]:
        """Each record Firehose wrote to S3 (moto concatenates a batch's records)."""
        payloads = []
        decoder = json.JSONDecoder()
        for item in self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
            text = self.s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read().decode()
            position = 0
            while position < len(text):
                _, end = decoder.raw_decode(text, position)
                payloads.append(text[position:end].encode())
                position = end
        return payloads


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        boto3.client("firehose", region_name=REGION).create_delivery_stream(
            DeliveryStreamName=STREAM,
            ExtendedS3DestinationConfiguration={
                "RoleARN": f"arn:aws:iam::{ACCOUNT}:role/firehose-inventory",
                "BucketARN": f"arn:aws:s3:::{BUCKET}",
            },
        )
        iot = boto3.client("iot", region_name=REGION)
        for thing_type in ("edge-gateway", "ip-camera"):
            iot.create_thing_type(thingTypeName=thing_type)
        for group in ("gateways", "plant-a", "cameras", "quarantine"):
            iot.create_thing_group(thingGroupName=group)
        yield Aws(iot=iot, s3=s3)


def add_sample_fleet(aws: Aws) -> None:
    aws.add_thing(
        "gw-berlin-03",
        "edge-gateway",
        {"firmware_version": "2.4.1", "segment": "plant-a", "site": "berlin-tempelhof"},
        ("gateways", "plant-a"),
    )
    aws.add_thing(
        "cam-lobby-2",
        "ip-camera",
        {"firmware_version": "1.9.3", "segment": "office"},
        ("cameras", "quarantine"),
    )
    aws.add_thing("legacy_plc:01")


def test_registry_inventory_lands_in_s3_and_transforms_to_thing_events(
    aws: Aws, run_handler: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    add_sample_fleet(aws)
    before = time.time_ns() // 1_000_000
    summary = inventory.lambda_handler(
        load("eventbridge/hourly_scheduled_event.json"), FakeLambdaContext()
    )
    after = time.time_ns() // 1_000_000

    assert summary["source"] == "registry"
    assert summary["things_exported"] == 3
    assert summary["group_lookups"] == 3
    assert summary["group_lookups_skipped"] == 0
    payloads = aws.delivered()
    records = [json.loads(payload) for payload in payloads]
    assert len(records) == 3
    assert all(check_thing(record) is None for record in records)
    assert {record["collector"] for record in records} == {"registry"}
    assert len({record["collectedAt"] for record in records}) == 1
    assert before <= records[0]["collectedAt"] <= after  # epoch milliseconds
    by_name = things(records)
    gateway = by_name["gw-berlin-03"]
    assert sorted(gateway.pop("thingGroupNames")) == ["gateways", "plant-a"]
    assert gateway == {
        "thingName": "gw-berlin-03",
        "thingTypeName": "edge-gateway",
        "thingArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/gw-berlin-03",
        "attributes": {
            "firmware_version": "2.4.1",
            "segment": "plant-a",
            "site": "berlin-tempelhof",
        },
        "version": 1,
    }
    assert sorted(by_name["cam-lobby-2"]["thingGroupNames"]) == ["cameras", "quarantine"]
    assert by_name["cam-lobby-2"]["attributes"]["firmware_version"] == "1.9.3"
    assert by_name["legacy_plc:01"]["thingGroupNames"] == []  # looked up: in no group
    assert "thingTypeName" not in by_name["legacy_plc:01"]

    out = capsys.readouterr().out
    assert metric(out, "ThingsExported") == [3.0]
    assert metric(out, "GroupLookupsSkipped") == [0.0]

    events = transformed(run_handler, payloads)
    thing_events = by_sourcetype(events, THING)
    assert len(thing_events) == 3
    assert {event["host"] for event in thing_events} == set(by_name)
    gateway_event = next(e for e in thing_events if e["host"] == "gw-berlin-03")
    assert gateway_event["fields"]["thing_type"] == "edge-gateway"
    assert gateway_event["event"]["attributes"]["firmware_version"] == "2.4.1"
    assert gateway_event["event"]["collector"] == "registry"


def test_group_lookups_stop_at_the_cap_and_the_rest_are_exported_without_groups(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(5):
        aws.add_thing(f"pump-{n:04d}", attributes={"segment": "plant-a"}, groups=("plant-a",))
    monkeypatch.setenv("MAX_GROUP_LOOKUPS", "2")

    summary = inventory.lambda_handler(
        load("eventbridge/hourly_scheduled_event.json"), FakeLambdaContext()
    )

    records = [json.loads(payload) for payload in aws.delivered()]
    assert len(records) == 5
    grouped = [thing for thing in things(records).values() if "thingGroupNames" in thing]
    assert len(grouped) == 2
    assert all(thing["thingGroupNames"] == ["plant-a"] for thing in grouped)
    assert summary["group_lookups"] == 2
    assert summary["group_lookups_skipped"] == 3
    assert summary["things_exported"] == 5
    assert metric(capsys.readouterr().out, "GroupLookupsSkipped") == [3.0]


def test_group_lookups_rotate_so_every_thing_has_its_groups_within_ceil_fleet_over_cap_runs(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    fleet = [f"pump-{n:04d}" for n in range(5)]
    for name in fleet:
        aws.add_thing(name, groups=("plant-a",))
    monkeypatch.setenv("MAX_GROUP_LOOKUPS", "2")
    sink = FakeFirehose(STREAM)
    monkeypatch.setattr(delivery, "firehose_client", lambda _: sink)
    schedule = load("eventbridge/hourly_scheduled_event.json")

    grouped_per_run = []
    for _ in range(math.ceil(len(fleet) / 2) + 1):
        before = len(sink.documents)
        summary = inventory.lambda_handler(schedule, FakeLambdaContext())
        assert summary["outcome"] == "done"
        records = sink.documents[before:]
        assert sorted(things(records)) == fleet  # every run exports the whole fleet
        grouped_per_run.append(
            sorted(name for name, thing in things(records).items() if "thingGroupNames" in thing)
        )

    assert grouped_per_run == [fleet[0:2], fleet[2:4], fleet[4:5], fleet[0:2]]
    assert {name for run in grouped_per_run[:3] for name in run} == set(fleet)
    checkpoint = engine.checkpoint("inventory")
    assert checkpoint is not None
    assert checkpoint.carry == {"groupOffset": 2}


def test_the_schedule_never_starts_a_second_export_while_one_runs(
    monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    engine.store.claim("inventory", "slice-1", lease_ms=900_000, max_slices=48, restart="when-done")
    monkeypatch.setattr(inventory, "iot_client", lambda _: pytest.fail("iot called"))

    summary = inventory.lambda_handler(
        load("eventbridge/hourly_scheduled_event.json"), FakeLambdaContext()
    )

    assert summary["outcome"] == "skipped"
    assert summary["things_exported"] == 0
    assert engine.invokes == []


@pytest.mark.parametrize("mode", ["REGISTRY", "REGISTRY_AND_SHADOW"])
def test_fleet_index_without_connectivity_indexing_exports_groups_but_no_connectivity(
    aws: Aws, mode: str, run_handler: Run
) -> None:
    add_sample_fleet(aws)
    aws.iot.update_indexing_configuration(
        thingIndexingConfiguration={
            "thingIndexingMode": mode,
            "thingConnectivityIndexingMode": "OFF",
        }
    )

    summary = inventory.lambda_handler(
        load("eventbridge/hourly_scheduled_event.json"), FakeLambdaContext()
    )

    assert summary["source"] == "fleet-index"
    assert summary["group_lookups"] == 0
    payloads = aws.delivered()
    records = [json.loads(payload) for payload in payloads]
    assert {record["collector"] for record in records} == {"fleet-index"}
    by_name = things(records)
    assert set(by_name) == {"gw-berlin-03", "cam-lobby-2", "legacy_plc:01"}
    assert sorted(by_name["gw-berlin-03"]["thingGroupNames"]) == ["gateways", "plant-a"]
    assert by_name["cam-lobby-2"]["thingTypeName"] == "ip-camera"
    for thing in by_name.values():
        assert "connectivity" not in thing  # moto always returns it; the index would not
        assert "shadow" not in thing
        assert thing["thingId"]
    assert len(by_sourcetype(transformed(run_handler, payloads), THING)) == 3


# --- Stubber: fleet index paging and connectivity, errors moto does not produce --------------


def test_fleet_index_pages_on_next_token_and_maps_connectivity(run_handler: Run) -> None:
    iot, stubber = stubbed_iot()
    stubber.add_response(
        "get_indexing_configuration",
        load("iot/get_indexing_configuration_registry_with_connectivity.json"),
        {},
    )
    stubber.add_response(
        "search_index", load("iot/search_index_first_page_with_connectivity.json"), SEARCH
    )
    stubber.add_response(
        "search_index", load("iot/search_index_last_page.json"), {**SEARCH, "nextToken": NEXT_TOKEN}
    )
    sink = FakeFirehose(STREAM)
    summary = collect_stubbed(iot, stubber, sink, max_group_lookups=1000)

    assert summary.source == "fleet-index"
    assert summary.pages == 2
    assert summary.things_exported == 5
    # Both pages' things in one PutRecordBatch.
    assert names_per_call(sink) == [
        ["gw-berlin-03", "cam-lobby-2", "pump-0017", "sensor-hall-7", "legacy_plc:01"],
    ]
    assert all(check_thing(record) is None for record in sink.documents)
    assert {(r["collector"], r["collectedAt"]) for r in sink.documents} == {
        ("fleet-index", COLLECTED_AT)
    }
    by_name = things(sink.documents)
    assert by_name["gw-berlin-03"] == {
        "thingName": "gw-berlin-03",
        "thingId": "ca2f0360-280d-4615-b18d-1a1f818aea64",
        "thingTypeName": "edge-gateway",
        "attributes": {
            "firmware_version": "2.4.1",
            "segment": "plant-a",
            "site": "berlin-tempelhof",
            "serial_number": "GW3-2406-0381",
        },
        "thingGroupNames": ["gateways", "plant-a"],
        "connectivity": {"connected": True, "timestamp": 1795165121906},
    }
    assert by_name["cam-lobby-2"]["connectivity"] == {
        "connected": False,
        "timestamp": 1795161877342,
        "disconnectReason": "MQTT_KEEP_ALIVE_TIMEOUT",
    }
    assert by_name["pump-0017"]["connectivity"] == {"connected": False}
    assert by_name["legacy_plc:01"] == {
        "thingName": "legacy_plc:01",
        "thingId": "0d4c8e21-6a3b-4f97-b2e5-9c1a7f3d5b68",
        "connectivity": {
            "connected": False,
            "timestamp": 1794560000000,
            "disconnectReason": "CLIENT_INITIATED_DISCONNECT",
        },
    }

    payloads = [json.dumps(record).encode() for record in sink.documents]
    events = by_sourcetype(transformed(run_handler, payloads), THING)
    camera = next(event for event in events if event["host"] == "cam-lobby-2")
    assert camera["event"]["connectivity"]["disconnectReason"] == "MQTT_KEEP_ALIVE_TIMEOUT"
    assert camera["event"]["thingGroupNames"] == ["cameras", "quarantine"]


@pytest.mark.parametrize("code", ["AccessDeniedException", "UnauthorizedException"])
def test_no_permission_for_the_indexing_configuration_falls_back_to_the_registry(
    code: str,
) -> None:
    iot, stubber = stubbed_iot()
    stubber.add_client_error(
        "get_indexing_configuration",
        service_error_code=code,
        service_message=f"User: arn:aws:sts::{ACCOUNT}:assumed-role/inventory/fn is not "
        "authorized to perform: iot:GetIndexingConfiguration",
        http_status_code=403,
    )
    stubber.add_response(
        "list_things", load("iot/list_things_page_mixed_types.json"), {"maxResults": 250}
    )
    stubber.add_response(
        "list_thing_groups_for_thing",
        load("iot/list_thing_groups_for_thing_two_groups.json"),
        {"thingName": "gw-berlin-03", "maxResults": 250},
    )
    stubber.add_response(
        "list_thing_groups_for_thing",
        {"thingGroups": []},
        {"thingName": "legacy_plc:01", "maxResults": 250},
    )
    sink = FakeFirehose(STREAM)
    summary = collect_stubbed(iot, stubber, sink, max_group_lookups=1000)

    assert summary.source == "registry"
    by_name = things(sink.documents)
    assert by_name["gw-berlin-03"]["thingGroupNames"] == ["gateways", "plant-a"]
    assert by_name["gw-berlin-03"]["version"] == 7
    assert by_name["legacy_plc:01"] == {
        "thingName": "legacy_plc:01",
        "thingArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/legacy_plc:01",
        "attributes": {},
        "thingGroupNames": [],
        "version": 1,
    }
    assert names_per_call(sink) == [["gw-berlin-03", "legacy_plc:01"]]  # each thing once, one batch
    assert summary.things_exported == 2
    assert [record["collector"] for record in sink.documents] == ["registry"] * 2


def test_an_index_not_ready_on_the_first_page_falls_back_to_the_registry() -> None:
    iot, stubber = stubbed_iot()
    stubber.add_response("get_indexing_configuration", indexing("REGISTRY", "STATUS"), {})
    stubber.add_client_error(
        "search_index", service_error_code="IndexNotReadyException", http_status_code=400
    )
    stubber.add_response(
        "list_things", load("iot/list_things_page_mixed_types.json"), {"maxResults": 250}
    )
    sink = FakeFirehose(STREAM)
    summary = collect_stubbed(iot, stubber, sink, max_group_lookups=0)

    assert summary.source == "registry"
    assert summary.group_lookups_skipped == 2
    assert names_per_call(sink) == [["gw-berlin-03", "legacy_plc:01"]]  # exported once, not twice
    assert summary.things_exported == 2
    assert [record["collector"] for record in sink.documents] == ["registry"] * 2
    assert all("thingGroupNames" not in record["thing"] for record in sink.documents)


def test_an_index_error_after_the_first_page_fails_instead_of_exporting_twice() -> None:
    iot, stubber = stubbed_iot()
    stubber.add_response("get_indexing_configuration", indexing("REGISTRY"), {})
    stubber.add_response(
        "search_index", load("iot/search_index_first_page_with_connectivity.json"), SEARCH
    )
    stubber.add_client_error(
        "search_index", service_error_code="IndexNotReadyException", http_status_code=400
    )
    sink = FakeFirehose(STREAM)
    with stubber, pytest.raises(ClientError, match="IndexNotReadyException"):
        inventory.collect_inventory(iot, sink, max_group_lookups=0, collected_at=COLLECTED_AT)
    assert [len(call) for call in names_per_call(sink)] == [3]
    # Connectivity indexing is OFF here: present in the response, but not exported.
    assert all("connectivity" not in record["thing"] for record in sink.documents)


def test_a_failing_indexing_configuration_call_fails_the_run_before_anything_is_sent() -> None:
    iot, stubber = stubbed_iot()
    stubber.add_client_error(
        "get_indexing_configuration", service_error_code="ThrottlingException", http_status_code=429
    )
    sink = FakeFirehose(STREAM)
    with stubber, pytest.raises(ClientError, match="ThrottlingException"):
        inventory.collect_inventory(iot, sink, max_group_lookups=10, collected_at=COLLECTED_AT)
    assert names_per_call(sink) == []


def test_a_zero_cap_makes_no_group_lookup_calls() -> None:
    iot, stubber = stubbed_iot()
    stubber.add_response("get_indexing_configuration", indexing("OFF"), {})
    stubber.add_response(
        "list_things", load("iot/list_things_page_mixed_types.json"), {"maxResults": 250}
    )
    sink = FakeFirehose(STREAM)
    # an unexpected ListThingGroupsForThing call would raise here
    summary = collect_stubbed(iot, stubber, sink, max_group_lookups=0)
    assert summary.group_lookups == 0
    assert summary.group_lookups_skipped == 2
    assert summary.things_exported == 2


def test_a_thing_deleted_during_the_run_is_not_exported() -> None:
    iot, stubber = stubbed_iot()
    stubber.add_response("get_indexing_configuration", indexing("OFF"), {})
    stubber.add_response(
        "list_things", load("iot/list_things_page_mixed_types.json"), {"maxResults": 250}
    )
    stubber.add_client_error(
        "list_thing_groups_for_thing",
        service_error_code="ResourceNotFoundException",
        http_status_code=404,
        expected_params={"thingName": "gw-berlin-03", "maxResults": 250},
    )
    stubber.add_response(
        "list_thing_groups_for_thing",
        {"thingGroups": []},
        {"thingName": "legacy_plc:01", "maxResults": 250},
    )
    sink = FakeFirehose(STREAM)
    summary = collect_stubbed(iot, stubber, sink, max_group_lookups=10)
    assert list(things(sink.documents)) == ["legacy_plc:01"]
    assert summary.things_gone == 1
    assert summary.things_exported == 1


def test_things_with_names_the_transform_rejects_are_counted_and_never_looked_up() -> None:
    iot, stubber = stubbed_iot()
    stubber.add_response("get_indexing_configuration", indexing("OFF"), {})
    stubber.add_response(
        "list_things",
        {"things": [{"thingName": "pump 17\nindex=main"}, {"thingName": "pump-0017"}]},
        {"maxResults": 250},
    )
    stubber.add_response(
        "list_thing_groups_for_thing",
        {"thingGroups": [{"groupName": "pumps"}]},
        {"thingName": "pump-0017", "maxResults": 250},
    )
    sink = FakeFirehose(STREAM)
    summary = collect_stubbed(iot, stubber, sink, max_group_lookups=10)
    assert names_per_call(sink) == [["pump-0017"]]
    assert summary.things_invalid == 1
    assert summary.group_lookups == 1


@pytest.mark.parametrize(
    "code", ["ThrottlingException", "InternalFailureException", "ServiceUnavailableException"]
)
def test_a_group_lookup_that_fails_costs_that_thing_its_groups_not_the_run(code: str) -> None:
    iot, stubber = stubbed_iot()
    stubber.add_response("get_indexing_configuration", indexing("OFF"), {})
    stubber.add_response(
        "list_things", load("iot/list_things_page_mixed_types.json"), {"maxResults": 250}
    )
    stubber.add_client_error(  # what the caller sees once botocore's retries are spent
        "list_thing_groups_for_thing",
        service_error_code=code,
        http_status_code=400 if code == "ThrottlingException" else 500,
        expected_params={"thingName": "gw-berlin-03", "maxResults": 250},
    )
    stubber.add_response(
        "list_thing_groups_for_thing",
        load("iot/list_thing_groups_for_thing_two_groups.json"),
        {"thingName": "legacy_plc:01", "maxResults": 250},
    )
    sink = FakeFirehose(STREAM)

    summary = collect_stubbed(iot, stubber, sink, max_group_lookups=10)

    by_name = things(sink.documents)
    assert list(by_name) == ["gw-berlin-03", "legacy_plc:01"]
    assert "thingGroupNames" not in by_name["gw-berlin-03"]  # absent: not looked up
    assert by_name["legacy_plc:01"]["thingGroupNames"] == ["gateways", "plant-a"]
    assert (summary.things_exported, summary.group_lookups, summary.group_lookup_errors) == (
        2,
        2,
        1,
    )
    assert summary.things_gone == 0


def test_an_oversized_thing_is_sent_as_a_small_record_the_transform_reports_unparsed(
    run_handler: Run,
) -> None:
    big = {"thingName": "pump-0017", "attributes": {f"a{n}": "x" * 1000 for n in range(1100)}}
    pages = [{"things": [load("iot/search_index_last_page.json")["things"][0], big]}]
    sink = FakeFirehose(STREAM)

    summary = inventory.collect_inventory(
        cast(Any, FakeFleetIndex(pages=pages)), sink, max_group_lookups=0, collected_at=COLLECTED_AT
    )

    assert (summary.things_exported, summary.things_not_put) == (1, 1)
    assert len(sink.calls) == 1
    stand_in = sink.documents[1]
    assert stand_in["recordType"] == delivery.NOT_PUT_RECORD_TYPE
    assert stand_in["item"] == {"thingName": "pump-0017"}
    assert stand_in["reasonCode"] == "record_too_large"
    events = all_events(run_handler(firehose_event(sink.accepted)))
    assert [event["sourcetype"] for event in events] == [THING, UNPARSED]
    assert events[1]["event"]["reason_code"] == "unknown_shape"
    assert json.loads(events[1]["event"]["payload"]) == stand_in


# --- the handler: configuration, failures, clients -------------------------------------------


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "1e3", "+5", "0x10", "10 000", "1234567890"])
def test_an_invalid_group_lookup_cap_stops_the_run_before_any_call(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_GROUP_LOOKUPS", value)

    def no_client(*_: Any) -> Any:
        raise AssertionError("no AWS call may happen with a bad configuration")

    monkeypatch.setattr(inventory, "iot_client", no_client)
    with pytest.raises(
        ConfigError, match=r"MAX_GROUP_LOOKUPS: .* (is not a whole number|is outside)"
    ):
        inventory.lambda_handler({}, FakeLambdaContext())


@pytest.mark.parametrize(
    ("value", "expected"), [(None, 1000), ("", 1000), ("  ", 1000), ("0", 0), (" 25 ", 25)]
)
def test_group_lookup_cap_values(value: str | None, expected: int) -> None:
    environ = {} if value is None else {"MAX_GROUP_LOOKUPS": value}
    assert inventory.max_group_lookups(environ) == expected


def test_a_missing_stream_name_stops_the_run_before_any_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DELIVERY_STREAM_NAME")
    monkeypatch.setattr(inventory, "iot_client", lambda _: pytest.fail("iot called"))
    with pytest.raises(delivery.DeliveryError, match="DELIVERY_STREAM_NAME"):
        inventory.lambda_handler({}, FakeLambdaContext())


def test_a_list_things_error_past_retries_ends_the_slice_and_the_next_resumes_there(
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    iot, stubber = stubbed_iot()
    first_page = {**load("iot/list_things_page_mixed_types.json"), "nextToken": "page-2"}
    stubber.add_response("get_indexing_configuration", indexing("OFF"), {})
    stubber.add_response("list_things", first_page, {"maxResults": 250})
    stubber.add_client_error(
        "list_things",
        service_error_code="ThrottlingException",
        http_status_code=429,
        expected_params={"maxResults": 250, "nextToken": "page-2"},
    )
    sink = FakeFirehose(STREAM)
    monkeypatch.setattr(inventory, "iot_client", lambda _: iot)
    monkeypatch.setattr(delivery, "firehose_client", lambda _: sink)
    monkeypatch.setenv("MAX_GROUP_LOOKUPS", "0")
    schedule = load("eventbridge/hourly_scheduled_event.json")

    with stubber:
        summary = inventory.lambda_handler(schedule, FakeLambdaContext())

    assert summary["outcome"] == "continued"
    assert names_per_call(sink) == [["gw-berlin-03", "legacy_plc:01"]]
    ended = next(r for r in caplog.records if "slice ended at its checkpoint" in r.getMessage())
    assert ended.checkpoint_key == "inventory"  # type: ignore[attr-defined]
    assert ended.summary["things_exported"] == 2  # type: ignore[attr-defined]
    checkpoint = engine.checkpoint("inventory")
    assert checkpoint is not None
    assert (checkpoint.cursor["token"], checkpoint.cursor["skip"]) == ("page-2", 0)
    assert (checkpoint.records, checkpoint.status) == (2, "running")
    assert engine.invokes == [{"resume": "inventory", "continued": True}]
    assert metric(capsys.readouterr().out, "ThingsExported") == [2.0]

    # The hourly schedule (or the continuation) resumes at page 2, not at page 1.
    stubber.add_response(
        "list_things",
        {"things": [{"thingName": "pump-0017", "version": 1}]},
        {"maxResults": 250, "nextToken": "page-2"},
    )
    with stubber:
        resumed = inventory.lambda_handler(schedule, FakeLambdaContext())
        stubber.assert_no_pending_responses()

    assert resumed["outcome"] == "done"
    assert [name for call in names_per_call(sink) for name in call] == [
        "gw-berlin-03",
        "legacy_plc:01",
        "pump-0017",
    ]
    assert {record["collectedAt"] for record in sink.documents} == {
        sink.documents[0]["collectedAt"]
    }  # one export, one stamp, across slices
    done = engine.checkpoint("inventory")
    assert done is not None
    assert (done.status, done.records, done.slices) == ("done", 3, 2)


def test_search_index_stops_when_the_service_repeats_a_next_token() -> None:
    page = {"things": [{"thingName": "pump-0017"}], "nextToken": "again"}
    iot: Any = FakeFleetIndex(pages=[page])
    with pytest.raises(RuntimeError, match="nextToken"):
        inventory.collect_inventory(
            iot, FakeFirehose(STREAM), max_group_lookups=0, collected_at=COLLECTED_AT
        )
    assert [search.get("nextToken") for search in iot.searches] == [None, "again"]


# --- Firehose: page by page, partial failures, permanent failures ---------------------------


def test_pages_are_buffered_into_one_batch_put_after_the_last_page(sleeps: list[float]) -> None:
    log: list[str] = []
    summary = inventory.collect_inventory(
        cast(Any, FakeFleetIndex(log)),
        FakeFirehose(STREAM, log=log),
        max_group_lookups=0,
        collected_at=COLLECTED_AT,
    )
    assert log == ["search", "search", "put 5"]
    assert summary.things_exported == 5
    assert (summary.pages, summary.listing_complete, summary.next_token_pending) == (2, True, False)
    assert sleeps == []


def test_records_firehose_rejects_are_retried_alone(sleeps: list[float]) -> None:
    sink = FakeFirehose(STREAM, key=thing_of, failures={"cam-lobby-2": 2})
    summary = inventory.collect_inventory(
        cast(Any, FakeFleetIndex()), sink, max_group_lookups=0, collected_at=COLLECTED_AT
    )
    assert names_per_call(sink) == [
        ["gw-berlin-03", "cam-lobby-2", "pump-0017", "sensor-hall-7", "legacy_plc:01"],
        ["cam-lobby-2"],
        ["cam-lobby-2"],
    ]
    assert len(sleeps) == 2
    assert summary.things_exported == 5
    assert sorted(things(sink.documents)) == sorted(
        ["gw-berlin-03", "cam-lobby-2", "pump-0017", "sensor-hall-7", "legacy_plc:01"]
    )


def test_records_firehose_keeps_rejecting_fail_the_run(sleeps: list[float]) -> None:
    iot: Any = FakeFleetIndex()
    sink = FakeFirehose(STREAM, key=thing_of, failures={"pump-0017": 1000})
    summary = inventory.Summary()
    with pytest.raises(delivery.DeliveryError, match="1 of 5 records"):
        inventory.collect_inventory(
            iot, sink, max_group_lookups=0, collected_at=COLLECTED_AT, summary=summary
        )
    assert len(iot.searches) == 2
    assert len(sleeps) == delivery.PUT_MAX_ATTEMPTS - 1 == 19
    assert summary.things_exported == 4


# --- fitting the schema ------------------------------------------------------------------------


def record_of(raw: dict[str, Any], **kwargs: Any) -> tuple[dict[str, Any] | None, list[str]]:
    options = {"collector": "fleet-index", "collected_at": COLLECTED_AT, **kwargs}
    return inventory.thing_record(raw, **options)


def test_values_that_do_not_fit_the_schema_are_converted_or_left_out() -> None:
    raw = {
        "thingName": "gw-berlin-03",
        "thingId": 42,
        "thingTypeName": "t" * 129,
        "attributes": {
            "firmware_version": "2.4.1",
            "port": 8883,
            "tls": True,
            "ratio": 0.25,
            "drift": math.nan,
            "owner": None,
            "location": {"lat": "52.47"},
            "tags": ["a"],
            "bad_text": "x\ud800",
        },
        "thingGroupNames": ["gateways", 7, "gateways", None, "plant-a"],
        "version": "7",
        "connectivity": {"connected": "yes", "timestamp": -1, "disconnectReason": 3},
        "shadow": '{"reported": {"password": "hunter2"}}',
    }
    record, dropped = record_of(raw, connectivity=True)
    assert record is not None
    assert record["thing"] == {
        "thingName": "gw-berlin-03",
        "attributes": {"firmware_version": "2.4.1", "port": "8883", "tls": "true", "ratio": "0.25"},
        "thingGroupNames": ["gateways", "plant-a"],
    }
    assert sorted(dropped) == sorted(
        [
            "thingId",
            "thingTypeName",
            "attributes.drift",
            "attributes.owner",
            "attributes.location",
            "attributes.tags",
            "attributes.bad_text",
            "thingGroupNames[]",
            "thingGroupNames[]",
            "version",
            "connectivity.connected",
            "connectivity.timestamp",
            "connectivity.disconnectReason",
        ]
    )
    assert check_thing(record) is None
    assert json.loads(delivery.encode(record)) == record


def test_integers_json_cannot_carry_are_left_out() -> None:
    """Found by the property test: orjson refuses integers outside 64 bits."""
    raw = {
        "thingName": "pump-0017",
        "version": -(2**63) - 1,
        "connectivity": {"connected": True, "timestamp": 2**64},
    }
    record, dropped = record_of(raw, connectivity=True)
    assert record is not None
    assert record["thing"] == {"thingName": "pump-0017", "connectivity": {"connected": True}}
    assert sorted(dropped) == ["connectivity.timestamp", "version"]
    assert json.loads(delivery.encode(record)) == record


def test_a_non_mapping_attributes_value_is_left_out() -> None:
    record, dropped = record_of({"thingName": "pump-0017", "attributes": ["segment=a"]})
    assert record is not None
    assert "attributes" not in record["thing"]
    assert dropped == ["attributes"]


def test_connectivity_is_exported_only_when_it_is_indexed() -> None:
    raw = {"thingName": "pump-0017", "connectivity": {"connected": True, "timestamp": 1795165121}}
    without, _ = record_of(raw)
    with_it, _ = record_of(raw, connectivity=True)
    assert without is not None
    assert with_it is not None
    assert "connectivity" not in without["thing"]
    assert with_it["thing"]["connectivity"] == {"connected": True, "timestamp": 1795165121}


@pytest.mark.parametrize(
    "name",
    ["", "pump-0017\n", "pump 17", "x" * 129, "pümp", "../things/pump", "pump/0017", None, 17],
)
def test_a_name_the_transform_would_reject_means_no_record(name: object) -> None:
    record, dropped = record_of({"thingName": name, "attributes": {"a": "b"}})
    assert record is None
    assert dropped == ["thingName"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=4,
)
valid_names = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_-",
    min_size=1,
    max_size=128,
)
thing_documents = st.fixed_dictionaries(
    {"thingName": st.one_of(valid_names, json_values)},
    optional={
        "thingId": json_values,
        "thingArn": json_values,
        "thingTypeName": st.one_of(st.text(max_size=140), json_values),
        "attributes": st.one_of(st.dictionaries(st.text(max_size=8), json_values), json_values),
        "thingGroupNames": st.one_of(st.lists(json_values, max_size=4), json_values),
        "version": json_values,
        "connectivity": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "connected": json_values,
                    "timestamp": st.one_of(st.integers(), json_values),
                    "disconnectReason": json_values,
                },
            ),
            json_values,
        ),
        "shadow": json_values,
    },
)


@pytest.mark.property
# Generating nested thing documents costs ~12 ms an example: 1,000 keep `make test` fast.
@settings(max_examples=min(settings().max_examples, 1_000))
@given(raw=thing_documents, connectivity=st.booleans())
def test_every_record_is_one_the_transform_accepts(raw: dict[str, Any], connectivity: bool) -> None:
    record, _ = record_of(raw, collector="registry", connectivity=connectivity)
    name = raw["thingName"]
    valid_name = isinstance(name, str) and thing_name(name) is not None
    assert (record is not None) == valid_name
    if record is not None:
        assert check_thing(record) is None
        assert json.loads(delivery.encode(record)) == record
