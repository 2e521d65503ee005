"""The responder end to end through its handler, against moto's IoT and DynamoDB: what each
action changes, what it refuses, what a retry does, and the audit trail it writes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoRegionError

from respond import handler
from respond.requests import InvalidInvocationError
from respond.store import QuarantineRecord
from tests.responder_aws import (
    DEPLOYED_RESPONDER,
    PROTECTED,
    QUARANTINE,
    Account,
    account,
    invoke,
    metrics,
    request,
)

__all__ = ["account"]  # the fixture, used by name

_NOTHING_DONE = {"targets": 0, "ok": 0, "noop": 0, "planned": 0, "refused": 0, "error": 0}


def _refusal(action: str | None, request_id: str | None, message: str) -> dict[str, Any]:
    """A refused answer as SOAR reads it, less its response id."""
    return {
        "status": "refused",
        "action": action,
        "request_id": request_id,
        "message": message,
        "targets": [],
        "counts": _NOTHING_DONE,
    }


def _without_response_id(answer: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in answer.items() if key != "response_id"}


# --- quarantine_thing ------------------------------------------------------------------------


def test_quarantine_isolates_the_thing_deactivates_its_certificate_and_ends_its_session(
    account: Account,
) -> None:
    (certificate,) = account.add_thing("cam-lobby-2", groups=("cameras",))
    account.expect_disconnect("cam-lobby-2")

    answer = invoke(request("quarantine_thing", thing_name="cam-lobby-2"))

    assert answer["status"] == "ok", answer
    assert account.groups_of("cam-lobby-2") == ["cameras", QUARANTINE]
    assert account.status(certificate) == "INACTIVE"
    (target,) = answer["targets"]
    assert target["before"] == {
        "groups": ["cameras"],
        "quarantined": False,
        "certificates": [{"certificate_id": certificate, "status": "ACTIVE"}],
    }
    assert target["after"] == {
        "groups": ["cameras", QUARANTINE],
        "quarantined": True,
        "certificates": [{"certificate_id": certificate, "status": "INACTIVE"}],
        "session": "ended",
    }
    assert answer["counts"] == {
        "targets": 1,
        "ok": 1,
        "noop": 0,
        "planned": 0,
        "refused": 0,
        "error": 0,
    }


def test_quarantining_a_quarantined_thing_is_a_noop(account: Account) -> None:
    account.add_thing("cam-lobby-2")
    account.expect_disconnect("cam-lobby-2")
    invoke(request("quarantine_thing", thing_name="cam-lobby-2"))

    again = invoke(request("quarantine_thing", thing_name="cam-lobby-2", request_id="second-try"))

    (target,) = again["targets"]
    assert (again["status"], target["message"]) == ("noop", "cam-lobby-2 is already quarantined")
    assert target["before"] == target["after"]
    assert target["after"]["quarantined"] is True
    record = handler.store().get("cam-lobby-2")
    assert record is not None
    assert record.request_id == "test-quarantine-thing"


def test_a_quarantined_thing_taken_out_of_the_group_by_hand_is_refused_until_released(
    account: Account,
) -> None:
    """The record says what the first quarantine deactivated: a second one would overwrite
    it. The analyst is told the thing is not isolated, and how to make it so."""
    (certificate,) = account.add_thing("cam-lobby-2")
    account.expect_disconnect("cam-lobby-2")
    invoke(request("quarantine_thing", thing_name="cam-lobby-2", request_id="q-1"))
    account.iot.remove_thing_from_thing_group(thingGroupName=QUARANTINE, thingName="cam-lobby-2")

    again = invoke(request("quarantine_thing", thing_name="cam-lobby-2", request_id="q-2"))

    (target,) = again["targets"]
    assert target == {
        "thing_name": "cam-lobby-2",
        "status": "refused",
        "message": f"cam-lobby-2 has a quarantine record (request q-1) but is not in "
        f"{QUARANTINE}: that quarantine is still running, or the thing was taken out of the "
        "group by hand (release it, then quarantine it again)",
        "before": {
            "groups": [],
            "quarantined": False,
            "certificates": [{"certificate_id": certificate, "status": "INACTIVE"}],
        },
    }
    record = handler.store().get("cam-lobby-2")
    assert record is not None
    assert record.request_id == "q-1"


def test_the_deployed_responder_quarantines_with_the_stacks_settings_and_ends_the_session(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handler's own responder, not the tests' stand-in: its group, table and data plane."""
    monkeypatch.setattr(handler, "responder", DEPLOYED_RESPONDER)
    account.add_thing("cam-lobby-2")
    account.expect_disconnect("cam-lobby-2")

    answer = invoke(request("quarantine_thing", thing_name="cam-lobby-2"))

    assert answer["status"] == "ok", answer
    assert answer["targets"][0]["after"]["session"] == "ended"
    assert account.groups_of("cam-lobby-2") == [QUARANTINE]
    assert handler.store().get("cam-lobby-2") is not None


def _endpoint_down(**_: Any) -> Any:
    raise EndpointConnectionError(endpoint_url="https://data.iot.test")


@pytest.mark.parametrize(
    ("fail", "session"),
    [
        (
            lambda account, _patch: account.data_plane.add_client_error(
                "delete_connection", service_error_code="ResourceNotFoundException"
            ),
            "not connected",
        ),
        (
            lambda account, _patch: account.data_plane.add_client_error(
                "delete_connection", service_error_code="ThrottlingException"
            ),
            "not ended (ThrottlingException)",
        ),
        (
            lambda _account, patch: patch.setattr(
                handler.iot_data_client(), "delete_connection", _endpoint_down
            ),
            "not ended (EndpointConnectionError)",
        ),
    ],
    ids=["not-connected", "aws-refuses", "aws-unreachable"],
)
def test_a_session_that_could_not_be_ended_is_said_and_the_quarantine_holds(
    account: Account,
    monkeypatch: pytest.MonkeyPatch,
    fail: Callable[[Account, pytest.MonkeyPatch], None],
    session: str,
) -> None:
    (certificate,) = account.add_thing("cam-lobby-2")
    fail(account, monkeypatch)

    answer = invoke(request("quarantine_thing", thing_name="cam-lobby-2"))

    assert answer["status"] == "ok"
    assert answer["targets"][0]["after"]["session"] == session
    assert answer["message"].endswith(f", session {session}")
    assert account.groups_of("cam-lobby-2") == [QUARANTINE]
    assert account.status(certificate) == "INACTIVE"


def test_quarantine_wins_over_a_dynamic_group_at_the_things_group_limit(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thing in 10 groups, some dynamic, can still be quarantined: IoT is asked to drop it
    from a dynamic group rather than refuse the static quarantine group."""
    account.add_thing("cam-lobby-2")
    account.expect_disconnect("cam-lobby-2")
    client = handler.iot_client()
    real_add = client.add_thing_to_thing_group
    asked: list[dict[str, Any]] = []

    def add(**call: Any) -> Any:
        asked.append(call)
        return real_add(**call)

    monkeypatch.setattr(client, "add_thing_to_thing_group", add)

    invoke(request("quarantine_thing", thing_name="cam-lobby-2"))

    assert asked == [
        {"thingGroupName": QUARANTINE, "thingName": "cam-lobby-2", "overrideDynamicGroups": True}
    ]


def test_every_answer_is_logged_whole(account: Account, caplog: pytest.LogCaptureFixture) -> None:
    account.add_thing("cam-lobby-2")

    answer = invoke(request("describe_thing", thing_name="cam-lobby-2"))

    (logged,) = _logged(caplog, "answered")
    assert (logged.levelname, logged.answer) == ("INFO", answer)


def test_keep_certificate_and_no_disconnect_change_only_the_group(account: Account) -> None:
    (certificate,) = account.add_thing("cam-lobby-2")

    answer = invoke(
        request(
            "quarantine_thing", thing_name="cam-lobby-2", keep_certificate=True, disconnect=False
        )
    )

    assert answer["status"] == "ok"
    assert account.status(certificate) == "ACTIVE"
    assert "session" not in answer["targets"][0]["after"]


def test_a_certificate_shared_with_other_things_is_left_active_and_named(account: Account) -> None:
    account.add_thing("gw-berlin-03", certificates=())
    (shared,) = account.add_thing("cam-lobby-2", share_with=("gw-berlin-03",))
    account.expect_disconnect("cam-lobby-2")

    answer = invoke(request("quarantine_thing", thing_name="cam-lobby-2"))

    assert account.status(shared) == "ACTIVE"
    assert answer["message"] == (
        f"quarantined cam-lobby-2: added to {QUARANTINE}, 0 certificate(s) deactivated, "
        f"1 shared certificate(s) left active ({shared[:12]}), session ended"
    )
    (target,) = answer["targets"]
    kept = {"certificate_id": shared, "status": "ACTIVE", "shared_with": ["gw-berlin-03"]}
    assert target["before"]["certificates"] == [kept]
    assert target["after"]["certificates"] == [kept]


def test_a_things_own_certificate_is_deactivated_and_the_one_it_shares_left_active(
    account: Account,
) -> None:
    (shared,) = account.add_thing("gw-berlin-03")
    (own,) = account.add_thing("cam-lobby-3")
    shared_arn = account.iot.describe_certificate(certificateId=shared)["certificateDescription"][
        "certificateArn"
    ]
    account.iot.attach_thing_principal(thingName="cam-lobby-3", principal=shared_arn)
    account.expect_disconnect("cam-lobby-3")

    answer = invoke(request("quarantine_thing", thing_name="cam-lobby-3"))

    (target,) = answer["targets"]
    listed = [c["certificate_id"] for c in target["before"]["certificates"]]
    assert sorted(listed) == sorted([own, shared])
    assert target["message"] == (
        f"quarantined cam-lobby-3: added to {QUARANTINE}, 1 certificate(s) deactivated, "
        f"1 shared certificate(s) left active ({shared[:12]}), session ended"
    )
    assert {c["certificate_id"]: c["status"] for c in target["after"]["certificates"]} == {
        own: "INACTIVE",
        shared: "ACTIVE",
    }
    assert (account.status(own), account.status(shared)) == ("INACTIVE", "ACTIVE")


def test_every_shared_certificate_left_active_is_named(account: Account) -> None:
    account.add_thing("gw-berlin-03", certificates=())
    first, second = account.add_thing(
        "cam-lobby-2", certificates=("ACTIVE", "ACTIVE"), share_with=("gw-berlin-03",)
    )
    account.expect_disconnect("cam-lobby-2")

    answer = invoke(request("quarantine_thing", thing_name="cam-lobby-2"))

    listed = [c["certificate_id"] for c in answer["targets"][0]["before"]["certificates"]]
    assert sorted(listed) == sorted([first, second])
    assert answer["message"].endswith(
        f"2 shared certificate(s) left active ({listed[0][:12]}, {listed[1][:12]}), session ended"
    )


def test_a_thing_in_two_protected_groups_is_refused_naming_both(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROTECTED_THING_GROUPS", f"{PROTECTED},life-support")
    handler.settings.cache_clear()
    account.add_thing("plc-line-1", groups=(PROTECTED, "life-support"))

    answer = invoke(request("quarantine_thing", thing_name="plc-line-1"))

    assert answer["message"] == (
        f"plc-line-1 is in protected thing group life-support, {PROTECTED}: never quarantined"
    )


def test_a_quarantine_started_meanwhile_by_another_request_is_a_noop_that_changes_nothing(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two requests for one thing at once: both read no record, and the table's conditional
    write lets only the first claim it. The second changes nothing and leaves its claim."""
    (certificate,) = account.add_thing("cam-lobby-2")
    competing = QuarantineRecord(
        "cam-lobby-2", "r-first", "soar:other", "exfiltration", 1.0, [certificate]
    )
    store = handler.store()
    store.begin(competing)
    read_the_table = store.get
    monkeypatch.setattr(store, "get", lambda _name: None)  # read before the claim

    answer = invoke(request("quarantine_thing", thing_name="cam-lobby-2"))

    (target,) = answer["targets"]
    unchanged = {
        "groups": [],
        "quarantined": False,
        "certificates": [{"certificate_id": certificate, "status": "ACTIVE"}],
    }
    assert target == {
        "thing_name": "cam-lobby-2",
        "status": "noop",
        "message": "cam-lobby-2 is already being quarantined",
        "before": unchanged,
        "after": unchanged,
    }
    assert (account.groups_of("cam-lobby-2"), account.status(certificate)) == ([], "ACTIVE")
    assert read_the_table("cam-lobby-2") == competing


def test_a_thing_in_a_protected_group_is_never_quarantined(account: Account) -> None:
    (certificate,) = account.add_thing("plc-line-1", groups=(PROTECTED,))

    answer = invoke(request("quarantine_thing", thing_name="plc-line-1"))

    assert answer["status"] == "refused"
    (target,) = answer["targets"]
    assert (
        target["message"]
        == f"plc-line-1 is in protected thing group {PROTECTED}: never quarantined"
    )
    assert target["before"]["groups"] == [PROTECTED]
    assert "after" not in target  # nothing was planned
    assert account.groups_of("plc-line-1") == [PROTECTED]
    assert account.status(certificate) == "ACTIVE"


def test_a_dry_run_plans_and_changes_nothing(account: Account) -> None:
    (certificate,) = account.add_thing("cam-lobby-2")

    answer = invoke(request("quarantine_thing", thing_name="cam-lobby-2", dry_run=True))

    assert answer["status"] == "planned"
    assert answer["targets"][0]["after"]["quarantined"] is True
    assert account.groups_of("cam-lobby-2") == []
    assert account.status(certificate) == "ACTIVE"
    assert account.response_records() == []  # nothing was done, so nothing to audit


def test_a_failure_half_way_undoes_what_was_done_for_the_thing(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = account.add_thing("cam-lobby-2", certificates=("ACTIVE", "ACTIVE"))
    client = handler.iot_client()
    real_update = client.update_certificate

    def update(**call: Any) -> Any:
        if call["certificateId"] == second and call["newStatus"] == "INACTIVE":
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                "UpdateCertificate",
            )
        return real_update(**call)

    monkeypatch.setattr(client, "update_certificate", update)

    answer = invoke(request("quarantine_thing", thing_name="cam-lobby-2"))

    assert answer["status"] == "error"
    assert answer["error"] == {"code": "ThrottlingException", "message": "Rate exceeded"}
    assert "the steps taken were undone" in answer["message"]
    assert account.groups_of("cam-lobby-2") == []
    assert [account.status(first), account.status(second)] == ["ACTIVE", "ACTIVE"]
    assert handler.store().get("cam-lobby-2") is None  # a later quarantine starts afresh


def test_a_thing_that_does_not_exist_is_an_error_with_the_aws_code(account: Account) -> None:
    answer = invoke(request("quarantine_thing", thing_name="no-such-thing"))
    assert answer["status"] == "error"
    assert answer["error"]["code"] == "ResourceNotFoundException"
    (target,) = answer["targets"]
    assert (target["thing_name"], target["message"]) == (
        "no-such-thing",
        "cannot read no-such-thing",
    )


# --- release ---------------------------------------------------------------------------------


def test_release_restores_exactly_what_quarantine_changed(account: Account) -> None:
    active, inactive = account.add_thing(
        "cam-lobby-2", groups=("cameras",), certificates=("ACTIVE", "INACTIVE")
    )
    account.expect_disconnect("cam-lobby-2")
    invoke(request("quarantine_thing", thing_name="cam-lobby-2"))

    answer = invoke(request("release_thing", thing_name="cam-lobby-2", reason="false positive"))

    assert answer["status"] == "ok", answer
    assert account.groups_of("cam-lobby-2") == ["cameras"]
    assert account.status(active) == "ACTIVE"
    assert account.status(inactive) == "INACTIVE"  # inactive before the quarantine: stays so
    assert handler.store().get("cam-lobby-2") is None
    (target,) = answer["targets"]
    assert target["message"] == (
        f"released cam-lobby-2: removed from {QUARANTINE}, 1 certificate(s) reactivated"
    )
    assert target["after"] == {
        "groups": ["cameras"],
        "quarantined": False,
        "certificates": [
            {"certificate_id": active, "status": "ACTIVE"},
            {"certificate_id": inactive, "status": "INACTIVE"},
        ],
    }


def test_a_release_after_the_thing_left_the_group_reactivates_its_certificate(
    account: Account,
) -> None:
    """Someone took the thing out of the quarantine group by hand: the release still
    restores the certificate it deactivated, and says the group was not touched."""
    (certificate,) = account.add_thing("cam-lobby-2", groups=("cameras",))
    account.expect_disconnect("cam-lobby-2")
    invoke(request("quarantine_thing", thing_name="cam-lobby-2"))
    account.iot.remove_thing_from_thing_group(thingGroupName=QUARANTINE, thingName="cam-lobby-2")

    answer = invoke(request("release_thing", thing_name="cam-lobby-2"))

    assert answer["status"] == "ok", answer
    assert account.status(certificate) == "ACTIVE"
    (target,) = answer["targets"]
    assert target["message"] == "released cam-lobby-2: 1 certificate(s) reactivated"
    assert target["after"] == {
        "groups": ["cameras"],
        "quarantined": False,
        "certificates": [{"certificate_id": certificate, "status": "ACTIVE"}],
    }


def test_a_dry_run_release_plans_and_changes_nothing(account: Account) -> None:
    (certificate,) = account.add_thing("cam-lobby-2", groups=("cameras",))
    account.expect_disconnect("cam-lobby-2")
    invoke(request("quarantine_thing", thing_name="cam-lobby-2"))
    audit_records = len(account.response_records())

    answer = invoke(request("release_thing", thing_name="cam-lobby-2", dry_run=True))

    assert answer["status"] == "planned"
    (target,) = answer["targets"]
    assert (target["status"], target["message"]) == (
        "planned",
        f"would have released cam-lobby-2: removed from {QUARANTINE}, 1 certificate(s) reactivated",
    )
    assert target["before"] == {
        "groups": sorted(["cameras", QUARANTINE]),
        "quarantined": True,
        "certificates": [{"certificate_id": certificate, "status": "INACTIVE"}],
    }
    assert target["after"] == {
        "groups": ["cameras"],
        "quarantined": False,
        "certificates": [{"certificate_id": certificate, "status": "ACTIVE"}],
    }
    assert account.groups_of("cam-lobby-2") == sorted(["cameras", QUARANTINE])
    assert account.status(certificate) == "INACTIVE"
    assert handler.store().get("cam-lobby-2") is not None
    assert len(account.response_records()) == audit_records  # a plan leaves no audit record


def test_a_release_failing_at_its_second_certificate_puts_back_all_it_did(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whole or not at all: the first certificate reactivated is deactivated again and the
    thing goes back into the group, overriding a dynamic group as the quarantine did."""
    first, second = account.add_thing("cam-lobby-2", certificates=("ACTIVE", "ACTIVE"))
    account.expect_disconnect("cam-lobby-2")
    invoke(request("quarantine_thing", thing_name="cam-lobby-2"))
    client = handler.iot_client()
    real_update, real_add = client.update_certificate, client.add_thing_to_thing_group
    added: list[dict[str, Any]] = []

    def update(**call: Any) -> Any:
        if call == {"certificateId": second, "newStatus": "ACTIVE"}:
            return _throttled("UpdateCertificate")()
        return real_update(**call)

    def add(**call: Any) -> Any:
        added.append(call)
        return real_add(**call)

    monkeypatch.setattr(client, "update_certificate", update)
    monkeypatch.setattr(client, "add_thing_to_thing_group", add)

    answer = invoke(request("release_thing", thing_name="cam-lobby-2"))

    (target,) = answer["targets"]
    assert (target["status"], target["message"]) == (
        "error",
        "release of cam-lobby-2 failed; the steps taken were undone",
    )
    assert target["error"] == {"code": "ThrottlingException", "message": "Rate exceeded"}
    assert target["before"]["quarantined"] is True
    assert (account.status(first), account.status(second)) == ("INACTIVE", "INACTIVE")
    assert added == [
        {"thingGroupName": QUARANTINE, "thingName": "cam-lobby-2", "overrideDynamicGroups": True}
    ]
    assert account.groups_of("cam-lobby-2") == [QUARANTINE]
    assert handler.store().get("cam-lobby-2") is not None


def test_a_release_that_fails_half_way_is_undone_and_keeps_the_record_to_try_again(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    (certificate,) = account.add_thing("cam-lobby-2")
    account.expect_disconnect("cam-lobby-2")
    invoke(request("quarantine_thing", thing_name="cam-lobby-2"))
    monkeypatch.setattr(handler.iot_client(), "update_certificate", _throttled("UpdateCertificate"))

    answer = invoke(request("release_thing", thing_name="cam-lobby-2"))

    assert answer["status"] == "error"
    assert answer["message"] == "release of cam-lobby-2 failed; the steps taken were undone"
    assert account.groups_of("cam-lobby-2") == [QUARANTINE]
    assert account.status(certificate) == "INACTIVE"
    assert handler.store().get("cam-lobby-2") is not None


def test_every_undo_step_that_fails_is_named_newest_first(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _second = account.add_thing("cam-lobby-2", certificates=("ACTIVE", "ACTIVE"))
    client = handler.iot_client()
    real_update = client.update_certificate

    def update(**call: Any) -> Any:
        if call["certificateId"] == first and call["newStatus"] == "INACTIVE":
            return real_update(**call)
        return _throttled("UpdateCertificate")()

    monkeypatch.setattr(client, "update_certificate", update)
    monkeypatch.setattr(
        client, "remove_thing_from_thing_group", _failing("InternalFailureException")
    )

    answer = invoke(request("quarantine_thing", thing_name="cam-lobby-2"))

    assert answer["message"] == (
        "quarantine of cam-lobby-2 failed and undoing it failed too "
        "(ThrottlingException, InternalFailureException): the record is kept, so release "
        "can finish the job"
    )


def _failing(code: str) -> Callable[..., Any]:
    def call(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": code, "Message": "boom"}}, "RemoveThingFromThingGroup")

    return call


def test_a_failure_whose_undo_fails_too_keeps_the_record_and_says_so(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Half quarantined: the record stays, so a release knows what to put back."""
    (certificate,) = account.add_thing("cam-lobby-2")
    client = handler.iot_client()
    monkeypatch.setattr(client, "update_certificate", _throttled("UpdateCertificate"))
    monkeypatch.setattr(
        client, "remove_thing_from_thing_group", _throttled("RemoveThingFromThingGroup")
    )

    answer = invoke(request("quarantine_thing", thing_name="cam-lobby-2"))

    (target,) = answer["targets"]
    assert target == {
        "thing_name": "cam-lobby-2",
        "status": "error",
        "message": "quarantine of cam-lobby-2 failed and undoing it failed too "
        "(ThrottlingException): the record is kept, so release can finish the job",
        "before": {
            "groups": [],
            "quarantined": False,
            "certificates": [{"certificate_id": certificate, "status": "ACTIVE"}],
        },
        "error": {"code": "ThrottlingException", "message": "Rate exceeded"},
    }
    assert account.groups_of("cam-lobby-2") == [QUARANTINE]
    assert handler.store().get("cam-lobby-2") is not None


def _throttled(operation: str) -> Callable[..., Any]:
    def call(**_: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, operation
        )

    return call


def test_releasing_a_thing_quarantined_by_something_else_is_refused(account: Account) -> None:
    account.add_thing("cam-lobby-2", groups=(QUARANTINE,))

    answer = invoke(request("release_thing", thing_name="cam-lobby-2"))

    assert answer["status"] == "refused"
    (target,) = answer["targets"]
    assert target == {
        "thing_name": "cam-lobby-2",
        "status": "refused",
        "message": f"cam-lobby-2 was put in {QUARANTINE} by something other than the responder "
        "(a mitigation action?): there is no record of what to restore; remove it from the "
        "group there",
        "before": target["before"],
    }
    assert target["before"]["groups"] == [QUARANTINE]
    assert account.groups_of("cam-lobby-2") == [QUARANTINE]


def test_releasing_a_thing_that_is_not_quarantined_is_a_noop(account: Account) -> None:
    (certificate,) = account.add_thing("cam-lobby-2")

    answer = invoke(request("release_thing", thing_name="cam-lobby-2"))

    state = {
        "groups": [],
        "quarantined": False,
        "certificates": [{"certificate_id": certificate, "status": "ACTIVE"}],
    }
    assert answer["targets"] == [
        {
            "thing_name": "cam-lobby-2",
            "status": "noop",
            "message": "cam-lobby-2 is not quarantined",
            "before": state,
            "after": state,
        }
    ]


# --- fleet-wide ------------------------------------------------------------------------------


def _cameras(account: Account, count: int) -> list[str]:
    names = [f"cam-{n:02d}" for n in range(count)]
    for name in names:
        account.add_thing(name, groups=("cameras",), attributes={"firmware_version": "2.0.10"})
    return names


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"expected_count": 2}, "thing group cameras holds 3 things, not expected_count 2"),
        ({"expected_count": 4}, "holds 3 things, not expected_count 4"),
    ],
)
def test_a_fleet_action_needs_the_exact_count(
    account: Account, keys: dict[str, int], message: str
) -> None:
    _cameras(account, 3)
    answer = invoke(request("quarantine_group", thing_group="cameras", **keys))
    assert answer["status"] == "refused"
    assert message in answer["message"]
    assert answer["targets"] == [
        {"thing_group": "cameras", "status": "refused", "message": answer["message"]}
    ]
    assert all(QUARANTINE not in account.groups_of(f"cam-{n:02d}") for n in range(3))


def test_a_version_action_refused_names_its_scope(account: Account) -> None:
    _cameras(account, 2)
    answer = invoke(
        request("release_version", attribute="firmware_version", value="2.0.10", expected_count=3)
    )
    assert answer["targets"] == [
        {
            "attribute": "firmware_version",
            "value": "2.0.10",
            "status": "refused",
            "message": "firmware_version = 2.0.10 holds 2 things, not expected_count 3",
        }
    ]


def test_a_fleet_of_exactly_the_cap_is_acted_on(account: Account) -> None:
    names = _cameras(account, 5)  # the tests' FleetActionCap is 5
    for name in names:
        account.expect_disconnect(name)

    answer = invoke(request("quarantine_group", thing_group="cameras", expected_count=5))

    assert (answer["status"], answer["counts"]["ok"]) == ("ok", 5)
    assert all(QUARANTINE in account.groups_of(name) for name in names)


def test_a_fleet_action_above_the_cap_is_refused(account: Account) -> None:
    _cameras(account, 6)  # the tests' FleetActionCap is 5
    answer = invoke(request("quarantine_group", thing_group="cameras", expected_count=6))
    assert answer["targets"] == [
        {
            "thing_group": "cameras",
            "status": "refused",
            "message": "thing group cameras holds more than the cap of 5 things (FleetActionCap)",
        }
    ]


@pytest.mark.parametrize("group", [PROTECTED, QUARANTINE])
def test_a_protected_group_is_never_a_fleet_target(account: Account, group: str) -> None:
    answer = invoke(request("quarantine_group", thing_group=group, expected_count=0))
    assert answer["targets"] == [
        {
            "thing_group": group,
            "status": "refused",
            "message": f"thing group {group} is protected: never a fleet target",
        }
    ]


def test_a_fleet_whose_things_cannot_be_listed_is_an_error_naming_it(account: Account) -> None:
    answer = invoke(request("release_group", thing_group="no-such-group", expected_count=1))

    (target,) = answer["targets"]
    assert target == {
        "thing_group": "no-such-group",
        "status": "error",
        "message": "cannot list the things of thing group no-such-group",
        "error": {"code": "ResourceNotFoundException", "message": target["error"]["message"]},
    }


def test_a_group_quarantine_reports_each_thing_and_one_failure_leaves_that_thing_untouched(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = _cameras(account, 3)
    account.iot.add_thing_to_thing_group(thingGroupName=PROTECTED, thingName=names[2])
    client = handler.iot_client()
    real_add = client.add_thing_to_thing_group

    def add(**call: Any) -> Any:
        if call["thingName"] == names[1]:
            raise ClientError(
                {"Error": {"Code": "InternalFailureException", "Message": "boom"}},
                "AddThingToThingGroup",
            )
        return real_add(**call)

    monkeypatch.setattr(client, "add_thing_to_thing_group", add)
    account.expect_disconnect(names[0])

    answer = invoke(request("quarantine_group", thing_group="cameras", expected_count=3))

    assert answer["status"] == "error"
    assert [t["status"] for t in answer["targets"]] == ["ok", "error", "refused"]
    assert answer["counts"] == {
        "targets": 3,
        "ok": 1,
        "noop": 0,
        "planned": 0,
        "refused": 1,
        "error": 1,
    }
    assert QUARANTINE in account.groups_of(names[0])
    assert QUARANTINE not in account.groups_of(names[1])
    assert all(account.status(c) == "ACTIVE" for c in account.certificates[names[1]])
    assert QUARANTINE not in account.groups_of(names[2])


def test_a_version_quarantine_finds_the_things_through_the_fleet_index(account: Account) -> None:
    names = _cameras(account, 2)
    account.add_thing("cam-new", attributes={"firmware_version": "2.1.0"})
    for name in names:
        account.expect_disconnect(name)

    answer = invoke(
        request(
            "quarantine_version", attribute="firmware_version", value="2.0.10", expected_count=2
        )
    )

    assert answer["status"] == "ok", answer
    assert [t["thing_name"] for t in answer["targets"]] == names
    assert QUARANTINE not in account.groups_of("cam-new")
    records = account.response_records()
    assert [(r["target"]["thingName"], r["target"]["firmwareVersion"]) for r in records] == [
        (name, "2.0.10") for name in names
    ]


def test_a_version_release_undoes_the_version_quarantine(account: Account) -> None:
    names = _cameras(account, 2)
    for name in names:
        account.expect_disconnect(name)
    by_version = {"attribute": "firmware_version", "value": "2.0.10", "expected_count": 2}
    invoke(request("quarantine_version", **by_version))

    answer = invoke(request("release_version", **by_version))

    assert answer["status"] == "ok", answer
    assert all(account.groups_of(name) == ["cameras"] for name in names)
    assert all(account.status(account.certificates[name][0]) == "ACTIVE" for name in names)


def test_a_fleet_answer_says_what_became_of_each_thing_in_one_message(account: Account) -> None:
    names = _cameras(account, 2)
    account.expect_disconnect(names[0])
    invoke(
        request("quarantine_thing", thing_name=names[1], keep_certificate=True, disconnect=False)
    )

    answer = invoke(request("quarantine_group", thing_group="cameras", expected_count=2))

    assert answer["status"] == "ok"
    assert answer["message"] == (
        f"quarantined {names[0]}: added to {QUARANTINE}, 1 certificate(s) deactivated, "
        f"session ended; {names[1]} is already quarantined"
    )


def test_a_fleet_expected_to_be_empty_and_empty_is_a_noop(account: Account) -> None:
    account.group("cameras")

    answer = invoke(request("quarantine_group", thing_group="cameras", expected_count=0))

    assert (answer["status"], answer["message"]) == ("noop", "no things to act on")
    assert answer["targets"] == []


def test_a_dry_run_with_nothing_to_do_is_a_noop_not_a_plan(account: Account) -> None:
    account.add_thing("cam-lobby-2")
    account.expect_disconnect("cam-lobby-2")
    invoke(request("quarantine_thing", thing_name="cam-lobby-2"))

    answer = invoke(request("quarantine_thing", thing_name="cam-lobby-2", dry_run=True))

    assert answer["status"] == "noop"


def test_a_fleet_with_a_refused_thing_and_nothing_done_is_refused(account: Account) -> None:
    """A refusal outranks a no-op: the analyst must see that a thing was held back."""
    names = _cameras(account, 2)
    account.iot.add_thing_to_thing_group(thingGroupName=PROTECTED, thingName=names[0])
    invoke(
        request("quarantine_thing", thing_name=names[1], keep_certificate=True, disconnect=False)
    )

    answer = invoke(request("quarantine_group", thing_group="cameras", expected_count=2))

    assert [t["status"] for t in answer["targets"]] == ["refused", "noop"]
    assert answer["status"] == "refused"


def test_a_group_release_undoes_the_group_quarantine(account: Account) -> None:
    names = _cameras(account, 2)
    for name in names:
        account.expect_disconnect(name)
    invoke(request("quarantine_group", thing_group="cameras", expected_count=2))

    answer = invoke(request("release_group", thing_group="cameras", expected_count=2))

    assert answer["status"] == "ok", answer
    assert all(account.groups_of(name) == ["cameras"] for name in names)
    assert all(account.status(account.certificates[name][0]) == "ACTIVE" for name in names)


# --- certificates ----------------------------------------------------------------------------


def test_deactivate_certificate_sets_it_inactive_and_names_its_things(account: Account) -> None:
    account.add_thing("gw-berlin-03", certificates=())
    (certificate,) = account.add_thing("cam-lobby-2", share_with=("gw-berlin-03",))

    answer = invoke(request("deactivate_certificate", certificate_id=certificate))

    assert account.status(certificate) == "INACTIVE"
    before = {"status": "ACTIVE", "things": ["cam-lobby-2", "gw-berlin-03"]}
    assert answer["targets"] == [
        {
            "certificate_id": certificate,
            "status": "ok",
            "message": f"deactivated certificate {certificate[:12]}… used by 2 thing(s)",
            "before": before,
            "after": {**before, "status": "INACTIVE"},
        }
    ]
    again = invoke(
        request("deactivate_certificate", certificate_id=certificate, request_id="again")
    )
    now = {**before, "status": "INACTIVE"}
    assert again["targets"] == [
        {
            "certificate_id": certificate,
            "status": "noop",
            "message": "certificate is already INACTIVE",
            "before": now,
            "after": now,
        }
    ]


def test_a_dry_run_deactivation_plans_and_leaves_the_certificate_active(account: Account) -> None:
    (certificate,) = account.add_thing("cam-lobby-2")

    answer = invoke(request("deactivate_certificate", certificate_id=certificate, dry_run=True))

    assert account.status(certificate) == "ACTIVE"
    before = {"status": "ACTIVE", "things": ["cam-lobby-2"]}
    assert answer["status"] == "planned"
    assert answer["targets"] == [
        {
            "certificate_id": certificate,
            "status": "planned",
            "message": f"would have deactivated certificate {certificate[:12]}… used by 1 thing(s)",
            "before": before,
            "after": {**before, "status": "INACTIVE"},
        }
    ]
    assert account.response_records() == []


def test_a_certificate_aws_will_not_deactivate_is_an_error_and_stays_active(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    (certificate,) = account.add_thing("cam-lobby-2")
    monkeypatch.setattr(handler.iot_client(), "update_certificate", _throttled("UpdateCertificate"))

    answer = invoke(request("deactivate_certificate", certificate_id=certificate))

    assert account.status(certificate) == "ACTIVE"
    assert answer["targets"] == [
        {
            "certificate_id": certificate,
            "status": "error",
            "message": f"cannot deactivate certificate {certificate}",
            "before": {"status": "ACTIVE", "things": ["cam-lobby-2"]},
            "error": {"code": "ThrottlingException", "message": "Rate exceeded"},
        }
    ]


def test_an_unknown_certificate_is_an_error_with_the_aws_code(account: Account) -> None:
    answer = invoke(request("deactivate_certificate", certificate_id="ab" * 32))
    assert (answer["status"], answer["error"]["code"]) == ("error", "ResourceNotFoundException")


# --- idempotency, malformed input, the audit trail -------------------------------------------


def test_a_retried_request_gets_the_first_answer_and_acts_once(account: Account) -> None:
    account.add_thing("cam-lobby-2")
    account.expect_disconnect("cam-lobby-2")  # once only: a second call would fail the stub
    ask = request("quarantine_thing", thing_name="cam-lobby-2")

    first = invoke(ask)
    second = invoke(ask)

    assert second == first
    assert len(account.response_records()) == 1


@pytest.mark.parametrize("dry_run", [False, True], ids=["describe", "dry-run"])
def test_a_read_or_a_dry_run_is_answered_afresh_whatever_its_request_id(
    account: Account, dry_run: bool
) -> None:
    """Only executed changes are remembered by request_id: a playbook re-reading a thing
    with the same id sees it as it is now, not as it was."""
    account.add_thing("cam-lobby-2")
    ask = (
        request("quarantine_thing", thing_name="cam-lobby-2", dry_run=True, request_id="r-look")
        if dry_run
        else request("describe_thing", thing_name="cam-lobby-2", request_id="r-look")
    )
    first = invoke(ask)
    account.group("cameras")
    account.iot.add_thing_to_thing_group(thingGroupName="cameras", thingName="cam-lobby-2")

    again = invoke(ask)

    assert first["targets"][0]["before"]["groups"] == []
    assert again["targets"][0]["before"]["groups"] == ["cameras"]
    assert again["response_id"] != first["response_id"]


def test_a_request_id_is_remembered_for_the_stacks_idempotency_period(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDEMPOTENCY_SECONDS", "600")
    handler.reset_container()
    account.add_thing("cam-lobby-2")
    account.expect_disconnect("cam-lobby-2")

    started = time.time()
    invoke(request("quarantine_thing", thing_name="cam-lobby-2"))
    ended = time.time()

    table = boto3.resource("dynamodb").Table("responder-idempotency")
    (item,) = table.scan()["Items"]
    expiration = item["expiration"]
    assert isinstance(expiration, Decimal)  # a DynamoDB number
    assert int(started) + 600 <= expiration <= int(ended) + 601


@pytest.mark.parametrize(
    "changed",
    [{"reason": "another reason"}, {"requested_by": "soar:someone-else"}],
    ids=["reason", "requested-by"],
)
def test_a_request_id_reused_with_another_reason_or_requester_is_refused(
    account: Account, changed: dict[str, str]
) -> None:
    """Who asked and why are part of the request: the audit trail must not credit the
    first requester with a second request."""
    account.add_thing("cam-lobby-2")
    account.expect_disconnect("cam-lobby-2")
    ask = request("quarantine_thing", thing_name="cam-lobby-2", request_id="r-1")
    invoke(ask)

    answer = invoke({**ask, **changed})

    assert answer["message"] == "request_id was already used for a different request"


def test_a_request_id_reused_for_another_request_is_refused(account: Account) -> None:
    account.add_thing("cam-lobby-2")
    account.add_thing("cam-lobby-3")
    account.expect_disconnect("cam-lobby-2")
    invoke(request("quarantine_thing", thing_name="cam-lobby-2", request_id="r-1"))

    answer = invoke(request("quarantine_thing", thing_name="cam-lobby-3", request_id="r-1"))

    assert _without_response_id(answer) == _refusal(
        "quarantine_thing", "r-1", "request_id was already used for a different request"
    )
    assert QUARANTINE not in account.groups_of("cam-lobby-3")


def test_a_retry_arriving_while_the_first_still_runs_is_refused_and_does_nothing(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SOAR retries a slow invocation: the retry lands while the first is still acting."""
    account.add_thing("cam-lobby-2")
    ask = request("quarantine_thing", thing_name="cam-lobby-2", request_id="r-1")
    retries: list[dict[str, Any]] = []

    def retried_meanwhile(**_: Any) -> dict[str, Any]:
        retries.append(invoke(ask))
        return {}

    monkeypatch.setattr(handler.iot_data_client(), "delete_connection", retried_meanwhile)

    first = invoke(ask)

    assert first["status"] == "ok"
    (retry,) = retries
    assert _without_response_id(retry) == _refusal(
        "quarantine_thing", "r-1", "a request with this request_id is still running"
    )
    assert len(account.response_records()) == 1  # the first run's only


def test_a_refused_request_is_answered_not_raised(account: Account) -> None:
    answer = invoke({"action": "quarantine_thing", "request_id": "r-1", "thing_name": "x"})
    assert answer["status"] == "refused"
    assert (
        answer["message"]
        == "quarantine_thing changes AWS IoT: requested_by and reason are required"
    )
    assert answer["targets"] == []


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_only_an_invocation_that_is_not_an_object_raises(account: Account) -> None:
    with pytest.raises(InvalidInvocationError):
        invoke(["quarantine_thing"])


def test_every_executed_target_leaves_one_response_record(account: Account) -> None:
    (certificate,) = account.add_thing("cam-lobby-2")
    account.add_thing("plc-line-1", groups=(PROTECTED,))
    account.expect_disconnect("cam-lobby-2")
    ask = request("quarantine_thing", thing_name="cam-lobby-2", request_id="r-audit")

    answer = invoke(ask)
    invoke(request("quarantine_thing", thing_name="plc-line-1"))

    records = account.response_records()
    assert [(r["action"], r["status"], r["target"]) for r in records] == [
        ("quarantine_thing", "SUCCEEDED", {"thingName": "cam-lobby-2"}),
        ("quarantine_thing", "SKIPPED", {"thingName": "plc-line-1"}),
    ]
    first = records[0]
    assert first["actionId"] == answer["response_id"]
    assert first["requestedBy"] == ask["requested_by"]
    assert first["reason"] == ask["reason"]
    assert first["details"]["requestId"] == "r-audit"
    assert first["details"]["after"]["certificates"] == [
        {"certificate_id": certificate, "status": "INACTIVE"}
    ]
    assert first["completedAt"] >= first["requestedAt"]


@pytest.fixture
def stopped_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The responder's deadline clock does not move: the time left is exactly what the
    invocation's context says, however long moto takes."""
    monkeypatch.setattr(handler, "clock", lambda: 1_000.0)


def test_an_audit_trail_put_when_one_call_fits_before_the_answer_margin(
    account: Account, stopped_clock: None
) -> None:
    """11.1 s left: less the 3 s kept for the answer, 8.1 s, room for one 8 s call."""
    account.add_thing("cam-lobby-2")
    account.expect_disconnect("cam-lobby-2")

    answer = invoke(request("quarantine_thing", thing_name="cam-lobby-2"), remaining_ms=11_100)

    assert "audit_trail" not in answer
    assert [r["actionId"] for r in account.response_records()] == [answer["response_id"]]


def test_the_audit_trail_client_makes_one_attempt_per_call_as_its_deadline_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    config = handler.firehose_client.__wrapped__().meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert (config.connect_timeout, config.read_timeout) == (2, 5)


def test_an_audit_trail_that_cannot_be_put_in_time_is_said_and_logged_whole(
    account: Account, caplog: pytest.LogCaptureFixture, stopped_clock: None
) -> None:
    """10.9 s left: less the 3 s kept for the answer, 7.9 s, short of one 8 s call. Nothing
    is lost: the records not put are in the function's log, for an operator to replay."""
    account.add_thing("cam-lobby-2")
    account.expect_disconnect("cam-lobby-2")

    answer = invoke(request("quarantine_thing", thing_name="cam-lobby-2"), remaining_ms=10_900)

    assert answer["status"] == "ok"
    assert answer["audit_trail"] == "1 of 1 response records not delivered"
    assert account.firehose.calls == []
    (kept,) = _logged(caplog, "response records not delivered")
    assert (kept.levelname, kept.request_id) == ("ERROR", "test-quarantine-thing")
    (record,) = [json.loads(record) for record in kept.records]
    assert (record["actionId"], record["target"]) == (
        answer["response_id"],
        {"thingName": "cam-lobby-2"},
    )


def test_a_throttled_audit_trail_is_retried_and_delivered(account: Account) -> None:
    account.add_thing("cam-lobby-2")
    account.expect_disconnect("cam-lobby-2")
    account.firehose.raises = 1

    answer = invoke(request("quarantine_thing", thing_name="cam-lobby-2"))

    assert "audit_trail" not in answer
    assert len(account.firehose.calls) == 2
    assert [r["actionId"] for r in account.response_records()] == [answer["response_id"]]


def test_an_audit_trail_without_a_stream_client_is_said_and_logged(
    account: Account, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_client() -> Any:
        raise NoRegionError

    monkeypatch.setattr(handler, "firehose_client", no_client)
    account.add_thing("cam-lobby-2")
    account.expect_disconnect("cam-lobby-2")

    answer = invoke(request("quarantine_thing", thing_name="cam-lobby-2"))

    assert answer["status"] == "ok"
    assert answer["audit_trail"] == "1 of 1 response records not delivered"
    (cause,) = _logged(caplog, "audit trail not written")
    assert (cause.levelname, cause.error) == (
        "ERROR",
        {"code": "NoRegionError", "message": "You must specify a region."},
    )
    (kept,) = _logged(caplog, "response records not delivered")
    assert [json.loads(record)["actionId"] for record in kept.records] == [answer["response_id"]]


def _logged(caplog: pytest.LogCaptureFixture, message: str) -> list[Any]:
    """The responder's log records saying ``message`` (their extra keys are attributes)."""
    return [record for record in caplog.records if record.getMessage() == message]


@pytest.mark.parametrize(
    ("ask", "published"),
    [
        (
            request("quarantine_thing", thing_name="cam-lobby-2"),
            {"Ok": 1, "Noop": 0, "Planned": 0, "Refused": 0, "Error": 0},
        ),
        (
            request("quarantine_thing", thing_name="cam-lobby-2", dry_run=True),
            {"Ok": 0, "Noop": 0, "Planned": 1, "Refused": 0, "Error": 0},
        ),
        (
            request("reboot_thing", thing_name="cam-lobby-2"),
            {"Ok": 0, "Noop": 0, "Planned": 0, "Refused": 0, "Error": 0},
        ),
    ],
    ids=["done", "planned", "refused-request"],
)
def test_every_answer_publishes_one_request_and_its_targets_by_status(
    account: Account,
    capsys: pytest.CaptureFixture[str],
    ask: dict[str, Any],
    published: dict[str, int],
) -> None:
    """The dashboard's and alarms' figures (CloudWatch, namespace IotDefenderSplunk)."""
    account.add_thing("cam-lobby-2")
    if not ask.get("dry_run") and ask["action"] == "quarantine_thing":
        account.expect_disconnect("cam-lobby-2")

    invoke(ask)

    assert metrics(capsys.readouterr().out) == {
        "ResponseRequests": [1.0],
        **{f"ResponseTargets{status}": [float(n)] for status, n in published.items()},
    }


# --- refused before anything is read ---------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "action", "request_id"),
    [
        ({"action": "reboot_thing", "request_id": "soar-1"}, "reboot_thing", "soar-1"),
        ({"action": 7, "request_id": ["soar-1"]}, None, None),
    ],
    ids=["named", "names-not-text"],
)
def test_a_refused_request_is_answered_in_the_answers_shape_echoing_what_it_named(
    account: Account, event: dict[str, Any], action: str | None, request_id: str | None
) -> None:
    """SOAR reads every answer the same way: a refusal names the action and request it was
    given (when they are text), has its own response id, and did nothing."""
    answer = invoke(event)

    response_id = answer.pop("response_id")
    assert len(response_id) == 36  # a UUID, so two refusals are told apart
    assert answer == _refusal(action, request_id, answer["message"])
    assert answer["message"].startswith("unknown action")
    assert invoke(event)["response_id"] != response_id
    assert account.response_records() == []
