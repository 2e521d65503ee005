"""Inventory collector records -> aws:iot:thing events."""

from __future__ import annotations

from tests.support import fixture_json, transform_fixture


def test_inventory_record_becomes_the_thing_document() -> None:
    record = fixture_json("thing", "gateway_connected_fleet_index.json")
    (event,) = transform_fixture("thing", "gateway_connected_fleet_index.json")

    assert event["sourcetype"] == "aws:iot:thing"
    assert event["host"] == "gw-berlin-03"
    assert event["time"] == record["collectedAt"] / 1000
    assert event["event"] == {
        **record["thing"],
        "collectedAt": record["collectedAt"],
        "collector": "fleet-index",
        "thing": "gw-berlin-03",
    }
    assert event["event"]["attributes"]["firmware_version"] == "2.4.1"
    assert event["fields"] == {"thing": "gw-berlin-03", "thing_type": "edge-gateway"}
