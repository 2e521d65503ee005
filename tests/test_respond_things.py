"""What the responder reads about things before acting, against botocore's Stubber (moto has no
Detect and no fleet-index connectivity): pages followed, caps kept, absent features said."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from respond import things

STARTED = datetime(2026, 11, 20, 9, 20, 3, tzinfo=UTC)


@pytest.fixture
def iot() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("iot", region_name="eu-west-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_active_violations_are_read_across_pages(iot: tuple[Any, Stubber]) -> None:
    client, stubber = iot
    violation = {
        "violationId": "v-1",
        "thingName": "pump-0017",
        "securityProfileName": "fleet-baseline",
        "behavior": {"name": "bytes-out-spike", "metric": "aws:all-bytes-out"},
        "violationStartTime": STARTED,
    }
    first = {"thingName": "pump-0017", "maxResults": things.PAGE_SIZE}
    stubber.add_response(
        "list_active_violations", {"activeViolations": [violation], "nextToken": "t2"}, first
    )
    stubber.add_response(
        "list_active_violations",
        {"activeViolations": [{"violationId": "v-2"}]},
        {**first, "nextToken": "t2"},
    )

    assert things.active_violations(client, "pump-0017") == [
        {
            "violation_id": "v-1",
            "behavior": "bytes-out-spike",
            "metric": "aws:all-bytes-out",
            "security_profile": "fleet-baseline",
            "started_at": STARTED.timestamp(),
        },
        {
            "violation_id": "v-2",
            "behavior": None,
            "metric": None,
            "security_profile": None,
            "started_at": None,
        },
    ]


def test_a_page_without_active_violations_is_none_active(iot: tuple[Any, Stubber]) -> None:
    client, stubber = iot
    stubber.add_response("list_active_violations", {})
    assert things.active_violations(client, "pump-0017") == []


def test_without_detect_the_violations_are_unknown_not_none(iot: tuple[Any, Stubber]) -> None:
    client, stubber = iot
    stubber.add_client_error("list_active_violations", "AccessDeniedException")
    assert things.active_violations(client, "pump-0017") is None


def test_connectivity_comes_from_the_fleet_index(iot: tuple[Any, Stubber]) -> None:
    client, stubber = iot
    state = {"connected": False, "timestamp": 1795166403118, "disconnectReason": "CLIENT_ERROR"}
    stubber.add_response(
        "search_index",
        {"things": [{"thingName": "pump-0017", "connectivity": state}]},
        {"queryString": "thingName:pump-0017", "maxResults": 1},
    )

    assert things.connectivity(client, "pump-0017") == {
        "connected": False,
        "timestamp": 1795166403118,
        "disconnect_reason": "CLIENT_ERROR",
    }


@pytest.mark.parametrize(
    "answer",
    [{"things": []}, {}, {"things": [{"thingName": "pump-0017"}]}, None],
    ids=["no-such-thing", "no-things-listed", "connectivity-not-indexed", "index-off"],
)
def test_connectivity_is_none_when_the_index_cannot_say(
    iot: tuple[Any, Stubber], answer: dict[str, Any] | None
) -> None:
    client, stubber = iot
    if answer is None:
        stubber.add_client_error("search_index", "IndexNotReadyException")
    else:
        stubber.add_response("search_index", answer)
    assert things.connectivity(client, "pump-0017") is None


def test_a_fleet_search_follows_pages_until_it_has_more_than_the_cap(
    iot: tuple[Any, Stubber],
) -> None:
    """One more than the cap is enough to refuse the request: no further page is read."""
    client, stubber = iot
    query = {"queryString": "attributes.firmware_version:4.2.1", "maxResults": 100}
    pages = [(["cam-3", "cam-1"], "t2"), (["cam-2", "cam-1"], "t3")]
    for (names, token), previous in zip(pages, [None, "t2"], strict=True):
        expected = {**query, "nextToken": previous} if previous else query
        found = {"things": [{"thingName": n} for n in names], "nextToken": token}
        stubber.add_response("search_index", found, expected)

    names = things.things_with_attribute(client, "firmware_version", "4.2.1", limit=2)

    assert names == ["cam-1", "cam-2", "cam-3"]  # each once, sorted, cap + 1


def test_a_fleet_search_ends_with_the_last_page(iot: tuple[Any, Stubber]) -> None:
    client, stubber = iot
    stubber.add_response("search_index", {"things": [{"thingName": "cam-1"}]})
    assert things.things_with_attribute(client, "model", "x", limit=5) == ["cam-1"]


def test_a_fleet_search_that_matches_nothing_is_no_things(iot: tuple[Any, Stubber]) -> None:
    """The answer leaves out the empty list, as AWS may."""
    client, stubber = iot
    stubber.add_response("search_index", {})
    assert things.things_with_attribute(client, "model", "x", limit=5) == []


def test_a_fleet_search_page_past_the_cap_gives_one_more_than_the_cap(
    iot: tuple[Any, Stubber],
) -> None:
    """Enough to refuse the request, and never a whole page of names more."""
    client, stubber = iot
    found = [{"thingName": f"cam-{n}"} for n in (5, 3, 1, 4, 2)]
    stubber.add_response("search_index", {"things": found, "nextToken": "t2"})
    assert things.things_with_attribute(client, "model", "x", limit=2) == [
        "cam-1",
        "cam-2",
        "cam-3",
    ]


def test_a_groups_things_are_read_until_more_than_the_cap(iot: tuple[Any, Stubber]) -> None:
    client, stubber = iot
    first = {"thingGroupName": "line-2", "maxResults": things.PAGE_SIZE}
    stubber.add_response(
        "list_things_in_thing_group", {"things": ["plc-3", "plc-1"], "nextToken": "t2"}, first
    )
    stubber.add_response(
        "list_things_in_thing_group",
        {"things": ["plc-2", "plc-4"], "nextToken": "t3"},
        {**first, "nextToken": "t2"},
    )

    assert things.things_in_group(client, "line-2", limit=2) == ["plc-1", "plc-2", "plc-3"]


def test_a_certificate_whose_things_page_leaves_out_the_list_is_shared_with_none(
    iot: tuple[Any, Stubber],
) -> None:
    client, stubber = iot
    arn = "arn:aws:iot:eu-west-1:123456789012:cert/" + "ab" * 32
    stubber.add_response(
        "list_principal_things", {}, {"principal": arn, "maxResults": things.PAGE_SIZE}
    )

    assert things.things_of_certificate(client, arn) == []


def test_pages_that_leave_out_their_lists_are_empty_lists(iot: tuple[Any, Stubber]) -> None:
    """botocore leaves out a member the service did not send: a thing with no groups, no
    principals, or a group with no things reads as empty, not as an error."""
    client, stubber = iot
    stubber.add_response("describe_thing", {"thingName": "cam-7"}, {"thingName": "cam-7"})
    paged = {"thingName": "cam-7", "maxResults": things.PAGE_SIZE}
    stubber.add_response("list_thing_groups_for_thing", {}, paged)
    stubber.add_response("list_thing_principals", {}, paged)
    stubber.add_response(
        "list_things_in_thing_group",
        {},
        {"thingGroupName": "line-2", "maxResults": things.PAGE_SIZE},
    )

    state = things.read_state(client, "cam-7", "quarantine")
    members = things.things_in_group(client, "line-2", limit=5)

    assert (state.groups, state.certificates, state.principals) == ([], [], [])
    assert members == []
