"""The tag on records the transform re-puts: it round-trips, it is bounded, and nothing a
producer sends can be mistaken for it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support import fixture_paths, record_bytes
from transform import reingest
from transform.batch import SLICE_BYTES
from transform.reingest import TAG_BYTES, Untagged

# A Firehose record's limit as the PutRecordBatch reference states it (1,000 KiB).
FIREHOSE_RECORD_BYTES = 1_000 * 1_024


@pytest.mark.property
@given(data=st.binary(), attempts=st.integers(min_value=0, max_value=999))
def test_a_tagged_record_comes_back_as_it_was_with_its_attempts(data: bytes, attempts: int) -> None:
    assert reingest.untag(reingest.tag(data, attempts)) == Untagged(data, attempts)
    events = reingest.untag(reingest.tag_events(data, attempts))
    assert events == Untagged(data, attempts, events=True)


def test_the_longest_tag_is_tag_bytes_so_a_tagged_slice_is_one_firehose_record() -> None:
    longest = max(len(reingest.tag(b"", 999)), len(reingest.tag_events(b"", 999)))
    assert longest == TAG_BYTES
    assert len(reingest.tag(b"x" * SLICE_BYTES, 999)) == FIREHOSE_RECORD_BYTES
    assert len(reingest.tag_events(b"x" * SLICE_BYTES, 999)) <= FIREHOSE_RECORD_BYTES


def test_a_tag_starts_with_a_byte_no_producer_starts_a_record_with() -> None:
    """IoT rules and collectors write JSON, CloudWatch writes gzip; a tag must start with
    neither, nor with any text, or a producer's record could pass for a re-put one."""
    producers = {record_bytes(path)[:1] for path in fixture_paths()}
    assert producers == {b"{", b"\x1f"}, "a new kind of producer: check the tag against it"
    for tagged in (reingest.tag(b"{}", 1), reingest.tag_events(b"{}\n", 1)):
        first = tagged[:1]
        assert first not in producers
        assert not first.decode("latin-1").isprintable()
        assert not first.isspace()


@pytest.mark.parametrize(
    "data",
    [
        b"\x1eiot-defender-splunk:reingest:1000\n{}",  # a count past three digits
        b"\x1eiot-defender-splunk:reingest:-1\n{}",
        b"\x1eiot-defender-splunk:reingest:\xd9\xa3\n{}",  # a non-ASCII digit
        b"\x1eiot-defender-splunk:reingest:\n{}",
        b"\x1eiot-defender-splunk:replay:1\n{}",
        b"\x1eiot-defender-splunk:reingest:1{}",  # no newline
        b"\x1eiot-defender-splunk:reingest:1",  # a tag cut short, no newline and no data
        b"\x1eiot-defender-splunk:reingest",  # no colon
        b"iot-defender-splunk:reingest:1\n{}",  # no leading separator
    ],
)
def test_anything_but_a_whole_tag_is_data_seen_for_the_first_time(data: bytes) -> None:
    assert reingest.untag(data) == Untagged(data)
