"""One in-memory Amazon Data Firehose for every test (and the bench) that puts records.

It answers PutRecordBatch the way the API reference describes: a ``RequestResponses`` entry per
record, in order, with ``RecordId`` for an accepted record and ``ErrorCode``/``ErrorMessage``
for a rejected one, and ``FailedPutCount``. It refuses calls Firehose would refuse (wrong
stream, over 500 records or 4 MiB, a record over 1,000 KiB), so a caller that breaks a limit
fails the test instead of passing against a fake that never checked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from shared.firehose import MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_RECORD_BYTES

__all__ = ["FakeFirehose", "FirehoseLimitError"]

Key = Callable[[bytes], object]


class FirehoseLimitError(Exception):
    """A call Firehose itself would reject (InvalidArgumentException / ResourceNotFound)."""


class FakeFirehose:
    """PutRecordBatch into one stream, with scripted rejections and failures.

    ``failures`` maps a record's key (``key(payload)``, the payload bytes by default) to how
    many more times that record is rejected with ``ServiceUnavailableException``; ``raises``
    makes that many whole calls fail; ``log`` receives ``"put <n>"`` per call, for ordering
    assertions against other fakes. ``keep=False`` only counts, for the bench's memory figures.
    """

    def __init__(
        self,
        stream: str | None = None,
        *,
        failures: Mapping[Any, int] | None = None,
        key: Key = bytes,
        raises: int = 0,
        log: list[str] | None = None,
        keep: bool = True,
    ) -> None:
        self.stream = stream
        self.failures = dict(failures or {})
        self.key = key
        self.raises = raises
        self.log = log
        self.keep = keep
        self.calls: list[list[bytes]] = []
        self.accepted: list[bytes] = []
        self.accepted_count = 0

    def put_record_batch(self, *, DeliveryStreamName: str, Records: Any) -> Any:  # noqa: N803
        payloads = [bytes(record["Data"]) for record in Records]
        self._check(DeliveryStreamName, payloads)
        if self.keep:
            self.calls.append(payloads)
        if self.log is not None:
            self.log.append(f"put {len(payloads)}")
        if self.raises:
            self.raises -= 1
            raise ConnectionError("ServiceUnavailableException: the call itself failed")
        responses = [self._answer(payload) for payload in payloads]
        failed = sum("ErrorCode" in response for response in responses)
        return {"FailedPutCount": failed, "Encrypted": False, "RequestResponses": responses}

    @property
    def documents(self) -> list[Any]:
        """Every accepted record, parsed as JSON, in the order accepted."""
        return [json.loads(payload) for payload in self.accepted]

    @property
    def call_documents(self) -> list[list[Any]]:
        """Every call's records (accepted or not), parsed as JSON."""
        return [[json.loads(payload) for payload in call] for call in self.calls]

    def _check(self, stream: str, payloads: list[bytes]) -> None:
        if self.stream is not None and stream != self.stream:
            raise FirehoseLimitError(f"ResourceNotFoundException: no stream {stream!r}")
        if not 1 <= len(payloads) <= MAX_BATCH_RECORDS:
            raise FirehoseLimitError(f"InvalidArgumentException: {len(payloads)} records")
        if sum(map(len, payloads)) > MAX_BATCH_BYTES:
            raise FirehoseLimitError("InvalidArgumentException: batch over 4 MiB")
        if any(len(payload) > MAX_RECORD_BYTES for payload in payloads):
            raise FirehoseLimitError("InvalidArgumentException: record over 1,000 KiB")

    def _answer(self, payload: bytes) -> dict[str, str]:
        key = self.key(payload)
        if self.failures.get(key, 0) > 0:
            self.failures[key] -= 1
            return {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."}
        self.accepted_count += 1
        if self.keep:
            self.accepted.append(payload)
        return {"RecordId": f"{self.accepted_count:056d}"}
