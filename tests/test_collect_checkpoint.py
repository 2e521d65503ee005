"""The collectors' checkpoint store: leases, races, resumption.

Every test runs twice, against moto's DynamoDB and against the in-memory ``FakeTable`` the
scale proofs use: the two must agree on every conditional write (a differential test of the
fake).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collect.checkpoint import (
    DONE,
    LEASE_MARGIN_MS,
    RUNNING,
    CheckpointStore,
    ClaimRefusedError,
    ExportStalledError,
    LeaseLostError,
    checkpoint_store,
)
from collect.deadline import Deadline
from shared.settings import ConfigError
from tests.checkpoints import TABLE, FakeTable, LostAnswers, WallClock, checkpoint_table

KEY = "audit#5c1f0e9a3b7d42e8a6f4d2c19b8e7a30"
LEASE = 300_000


Tables = Callable[[WallClock], AbstractContextManager[CheckpointStore]]


@contextmanager
def fake_table(clock: WallClock) -> Iterator[CheckpointStore]:
    yield CheckpointStore(FakeTable(), TABLE, clock)  # type: ignore[arg-type]


@pytest.fixture(params=["moto", "fake"])
def tables(request: pytest.FixtureRequest) -> Tables:
    return checkpoint_table if request.param == "moto" else fake_table


def claim(store: CheckpointStore, owner: str, **options: Any) -> Any:
    settings_ = {"lease_ms": LEASE, "max_slices": 48, "restart": "never", **options}
    return store.claim(KEY, owner, **settings_)


def raced_by(store: CheckpointStore, rival: str) -> CheckpointStore:
    """A store on the same table whose first write comes just after ``rival`` claimed the
    export: between this store's read of the item and its conditional put."""
    client = store.client
    raced: list[bool] = []

    class RacingClient:
        def get_item(self, **request: Any) -> Any:
            return client.get_item(**request)

        def put_item(self, **request: Any) -> Any:
            if not raced:
                raced.append(True)
                claim(store, rival)
            return client.put_item(**request)

    return CheckpointStore(RacingClient(), TABLE, store.now_ms)  # type: ignore[arg-type]


def test_a_new_export_is_claimed_running_with_a_lease_and_a_ttl(tables: Tables) -> None:
    clock = WallClock()
    with tables(clock) as store:
        checkpoint, resumed = claim(store, "slice-a")
        item = store.client.get_item(
            TableName=TABLE, Key={"exportKey": {"S": KEY}}, ConsistentRead=True
        )["Item"]

    assert resumed is False
    assert (checkpoint.status, checkpoint.slices, checkpoint.cursor) == (RUNNING, 1, {})
    assert item["status"] == {"S": "running"}
    assert item["owner"] == {"S": "slice-a"}
    assert int(item["leaseExpiresAt"]["N"]) == clock.now + LEASE + LEASE_MARGIN_MS
    assert int(item["expiresAt"]["N"]) == clock.now // 1000 + 30 * 24 * 3600  # TTL, seconds


def test_a_live_lease_held_by_another_owner_is_refused(tables: Tables) -> None:
    with tables(WallClock()) as store:
        claim(store, "slice-a")
        with pytest.raises(ClaimRefusedError, match="being collected by slice-a"):
            claim(store, "slice-b")
        assert store.load(KEY).owner == "slice-a"  # type: ignore[union-attr]


def test_an_expired_lease_is_taken_over_with_its_cursor_and_the_old_owner_stops(
    tables: Tables,
) -> None:
    clock = WallClock()
    with tables(clock) as store:
        first, _ = claim(store, "slice-a")
        first.cursor = {"token": "page-7", "skip": 0}
        first.records = 1500
        store.save(first)
        clock.now += LEASE + LEASE_MARGIN_MS + 1  # slice-a was killed at its timeout

        second, resumed = claim(store, "slice-b")
        with pytest.raises(LeaseLostError, match="taken over"):
            store.save(first)  # slice-a, had it lived on, may not write any more

        assert resumed is True
        assert (second.cursor, second.records, second.slices) == (first.cursor, 1500, 2)
        assert store.load(KEY).owner == "slice-b"  # type: ignore[union-attr]


def test_two_owners_racing_for_one_export_leave_exactly_one_winner(tables: Tables) -> None:
    with tables(WallClock()) as store:
        racer = raced_by(store, "slice-b")
        with pytest.raises(ClaimRefusedError, match="claimed by another invocation"):
            claim(racer, "slice-a")
        assert store.load(KEY).owner == "slice-b"  # type: ignore[union-attr]


def test_a_released_export_is_resumed_at_once(tables: Tables) -> None:
    with tables(WallClock()) as store:
        first, _ = claim(store, "slice-a")
        first.cursor = {"token": "page-3", "skip": 120}
        store.release(first)
        second, resumed = claim(store, "slice-b")
    assert resumed is True
    assert second.cursor == {"token": "page-3", "skip": 120}


def test_a_done_audit_is_never_restarted_but_a_done_inventory_starts_over_keeping_carry(
    tables: Tables,
) -> None:
    with tables(WallClock()) as store:
        first, _ = claim(store, "slice-a")
        first.cursor, first.records, first.carry = {"token": None, "skip": 3}, 3, {"offset": 9}
        store.finish(first)
        with pytest.raises(ClaimRefusedError, match="already collected in full"):
            claim(store, "sns-redelivery")
        again, resumed = claim(store, "next-hour", restart="when-done")
    assert first.status == DONE
    assert resumed is False
    assert (again.cursor, again.records, again.slices, again.carry) == ({}, 0, 1, {"offset": 9})


def test_slices_stop_at_the_limit_and_a_resume_by_hand_grants_more(tables: Tables) -> None:
    with tables(WallClock()) as store:
        for owner in ("s1", "s2"):
            checkpoint, _ = claim(store, owner, max_slices=2)
            checkpoint.cursor = {"token": owner, "skip": 0}
            store.release(checkpoint)
        with pytest.raises(
            ExportStalledError, match=r"all 2 slices .*cursor \{\"skip\": 0, \"token\": \"s2\"\}"
        ):
            claim(store, "s3", max_slices=2)
        by_hand, _ = claim(store, "operator", max_slices=2, by_hand=True)
    assert (by_hand.slices, by_hand.slice_limit, by_hand.cursor["token"]) == (3, 4, "s2")


@settings(max_examples=25, deadline=None)
@given(
    cursor=st.dictionaries(
        st.text(max_size=8),
        st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
        max_size=5,
    )
)
def test_any_json_cursor_comes_back_as_it_was_saved(cursor: dict[str, Any]) -> None:
    with checkpoint_table() as store:
        checkpoint, _ = claim(store, "slice-a")
        checkpoint.cursor = cursor
        store.save(checkpoint)
        assert store.load(KEY).cursor == json.loads(json.dumps(cursor))  # type: ignore[union-attr]


def test_the_store_needs_its_table_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHECKPOINT_TABLE_NAME", raising=False)
    with pytest.raises(ConfigError, match="CHECKPOINT_TABLE_NAME is not set"):
        checkpoint_store(Deadline(300.0, clock=lambda: 0.0))


def test_lambdas_retry_under_the_same_request_id_takes_its_own_live_lease_over(
    tables: Tables,
) -> None:
    with tables(WallClock()) as store:
        died, _ = claim(store, "request-1")  # killed mid-slice: its lease is still live
        died.cursor = {"token": "page-4", "skip": 0}
        store.save(died)
        retry, resumed = claim(store, "request-1")
        with pytest.raises(LeaseLostError):
            store.save(died)  # a duplicate of the same request cannot write behind it
        store.save(retry)
    assert resumed is True
    assert (retry.cursor, retry.slices) == ({"token": "page-4", "skip": 0}, 2)


def test_a_write_botocore_retried_after_its_answer_was_lost_is_this_slices_own(
    tables: Tables,
) -> None:
    """Every PutItem lands, then its retry fails the condition the landed attempt changed."""
    clock = WallClock()
    with tables(clock) as store:
        lossy = CheckpointStore(LostAnswers(store.client), TABLE, clock)  # type: ignore[arg-type]
        mine, _ = claim(lossy, "slice-a")
        mine.cursor = {"token": "page-2", "skip": 0}
        lossy.save(mine)
        clock.now += LEASE + LEASE_MARGIN_MS + 1
        claim(store, "slice-b")  # a real takeover is still refused, lost answers or not
        with pytest.raises(LeaseLostError, match="taken over"):
            lossy.save(mine)
        held = store.load(KEY)
    assert held is not None
    assert (held.owner, held.cursor, held.slices) == ("slice-b", {"token": "page-2", "skip": 0}, 2)


def test_two_owners_racing_to_resume_a_released_export_leave_exactly_one_winner(
    tables: Tables,
) -> None:
    with tables(WallClock()) as store:
        first, _ = claim(store, "slice-1")
        store.release(first)
        racer = raced_by(store, "slice-b")
        with pytest.raises(ClaimRefusedError, match="claimed by another invocation"):
            claim(racer, "slice-a")
        winner = store.load(KEY)
    assert winner is not None
    assert (winner.owner, winner.slices) == ("slice-b", 2)
