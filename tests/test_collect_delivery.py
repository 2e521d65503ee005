"""Full PutRecordBatch calls: the collectors' records buffered across API pages, put 500 or
4 MiB at a time, in order, each exactly once."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collect import inventory
from collect.audit_findings import collect_task
from collect.delivery import RecordBuffer
from shared.firehose import MAX_BATCH_BYTES, MAX_BATCH_RECORDS, encode
from tests.collector_time import record_put_waits
from tests.fakes import FakeFirehose
from tests.support import SAMPLES_DIR

STREAM = "iot-defender-splunk"
TASK_ID = "5c1f0e9a3b7d42e8a6f4d2c19b8e7a30"
FINDING = json.loads(
    (SAMPLES_DIR / "audit_collector" / "api" / "list_audit_findings_page1.json").read_text()
)["findings"][0]
THING = json.loads(
    (SAMPLES_DIR / "inventory_collector" / "iot" / "search_index_last_page.json").read_text()
)["things"][0]


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    monkeypatch.setenv("DELIVERY_STREAM_NAME", STREAM)
    return record_put_waits(monkeypatch)


class Pages:
    """An IoT client listing pages of ``sizes`` findings (ListAuditFindings) or things
    (SearchIndex); ``log`` gets "list" per page, beside the fake Firehose's "put <n>"."""

    def __init__(self, sizes: list[int], log: list[str]) -> None:
        self.sizes = sizes
        self.log = log
        self.items = 0

    def list_audit_findings(self, **_: Any) -> Any:
        number = self.log.count("list")
        names = self._page(self.sizes[number])
        page = {"findings": [{**FINDING, "findingId": name} for name in names]}
        return page if number + 1 == len(self.sizes) else {**page, "nextToken": f"p{number}"}

    def get_indexing_configuration(self) -> Any:
        return {"thingIndexingConfiguration": {"thingIndexingMode": "REGISTRY"}}

    def search_index(self, **_: Any) -> Any:
        number = self.log.count("list")
        page = {"things": [{**THING, "thingName": n} for n in self._page(self.sizes[number])]}
        return page if number + 1 == len(self.sizes) else {**page, "nextToken": f"p{number}"}

    def _page(self, size: int) -> list[str]:
        self.log.append("list")
        names = [f"pump-{n:05d}" for n in range(self.items, self.items + size)]
        self.items += size
        return names


def test_findings_pages_of_250_make_full_calls_of_500() -> None:
    log: list[str] = []
    sink = FakeFirehose(STREAM, log=log)

    iot: Any = Pages([250] * 5 + [1], log)
    collection = collect_task(TASK_ID, iot, sink)

    assert [len(call) for call in sink.calls] == [500, 500, 251]
    assert (collection.pages, collection.findings) == (6, 1251)
    # A batch goes as soon as it is full, before the next page is read; the rest at the end.
    assert log == ["list", "list", "put 500"] * 2 + ["list", "list", "put 251"]
    assert len(sink.accepted) == len(set(sink.accepted)) == 1251


def test_fleet_index_pages_of_100_make_full_calls_of_500() -> None:
    sink = FakeFirehose(STREAM)

    summary = inventory.collect_inventory(
        cast(Any, Pages([100] * 12, [])), sink, max_group_lookups=0, collected_at=1_795_167_000_412
    )

    assert [len(call) for call in sink.calls] == [500, 500, 200]
    assert (summary.pages, summary.things_exported) == (12, 1200)


def test_large_records_fill_a_call_up_to_4_mib() -> None:
    sink = FakeFirehose(STREAM)
    records = [{"findingId": str(n), "pad": "x" * 900_000} for n in range(10)]

    calls_after_each_add = []
    with RecordBuffer(sink) as buffer:
        for record in records:
            buffer.add(record)
            calls_after_each_add.append(len(sink.calls))

    # Never more than 4 MiB held: the fifth record sends the first four before it is kept.
    assert calls_after_each_add == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert [len(call) for call in sink.calls] == [4, 4, 2]
    assert all(sum(map(len, call)) <= MAX_BATCH_BYTES for call in sink.calls)
    assert buffer.put == 10


# Many small records reach the 500-record limit, a few large ones the 4 MiB limit.
record_sizes = st.tuples(
    st.lists(st.integers(min_value=2, max_value=4_000), max_size=1_200),
    st.lists(st.integers(min_value=300_000, max_value=1_000 * 1024 - 32), max_size=12),
).flatmap(lambda lists: st.permutations(lists[0] + lists[1]))


@pytest.mark.property
# An example holds up to 12 MB of records: 50 examples keep this under 5 s.
@settings(max_examples=min(settings().max_examples, 50))
@given(sizes=record_sizes)
def test_every_record_is_put_once_in_order_in_calls_no_fuller_than_allowed(
    sizes: list[int],
) -> None:
    sink = FakeFirehose(STREAM)  # refuses any call over Firehose's limits
    records = [{"n": n, "pad": "x" * max(0, size - 20)} for n, size in enumerate(sizes)]

    with RecordBuffer(sink) as buffer:
        for record in records:
            buffer.add(record)

    assert [payload for call in sink.calls for payload in call] == [encode(r) for r in records]
    assert buffer.put == len(records)
    # Every call but the last was full: one more record would have broken a limit.
    for call, following in zip(sink.calls, sink.calls[1:], strict=False):
        full = len(call) == MAX_BATCH_RECORDS
        assert full or sum(map(len, call)) + len(following[0]) > MAX_BATCH_BYTES
