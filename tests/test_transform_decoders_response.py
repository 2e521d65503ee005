"""The responder's records of what it did -> aws:iot:response events."""

from __future__ import annotations

from tests.support import fixture_json, transform_fixture


def test_response_record_keeps_the_act_and_names_the_device() -> None:
    record = fixture_json("response", "quarantine_thing_succeeded.json")
    (event,) = transform_fixture("response", "quarantine_thing_succeeded.json")

    assert event["sourcetype"] == "aws:iot:response"
    assert event["host"] == "cam-lobby-2"
    assert event["time"] == record["completedAt"] / 1000
    assert event["event"] == {**record, "thing": "cam-lobby-2"}
    assert event["fields"] == {
        "action": "quarantine_thing",
        "status": "SUCCEEDED",
        "thing": "cam-lobby-2",
    }


def test_response_without_a_thing_target_has_no_host() -> None:
    (event,) = transform_fixture("response", "deactivate_certificate_failed.json")
    assert "host" not in event
    assert event["event"]["status"] == "FAILED"
    assert event["event"]["error"]["code"]
