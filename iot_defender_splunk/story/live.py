"""The demo against a real Splunk: which index the app searches, when the events are
searchable, and which of an incident's detections fired when their saved searches ran.

splunk-sdk's service in the app's namespace; every call has a socket timeout and every wait a
deadline. Saved searches are dispatched with ``dispatch.now`` at the simulation's end, so each
runs over its own schedule window as if the scheduler had run it then, and alerts nothing.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from splunklib import binding, client

from iot_defender_splunk.story.rules import APP

APP_ID = APP.name
INDEX_MACRO = "iot_defender_index"
CALL_TIMEOUT_SECONDS = 10
POLL_SECONDS = 1.0
_INDEX_TERM = re.compile(r"""\bindex\s*=\s*"?([^\s"()]+)"?""")


class LiveError(Exception):
    """Splunk could not be reached, refused the credentials, or did not answer in time."""


def indexes_in(definition: str) -> set[str]:
    """The index names a macro definition such as ``(index=a OR index="b")`` names."""
    return set(_INDEX_TERM.findall(definition))


def shipped_index_macro() -> str:
    """The app's default ``iot_defender_index`` definition (default/macros.conf)."""
    text = (APP / "default" / "macros.conf").read_text(encoding="utf-8")
    found = re.search(rf"^\[{INDEX_MACRO}\]\s*\ndefinition\s*=\s*(.+)$", text, re.MULTILINE)
    return found.group(1).strip() if found else ""


@dataclass(frozen=True)
class SearchHead:
    """Where and how to reach splunkd's REST API, from SPLUNK_URL and SPLUNK_USERNAME with
    SPLUNK_PASSWORD, or SPLUNK_TOKEN (an authentication token)."""

    host: str
    port: int
    scheme: str
    credentials: Mapping[str, str]
    verify_tls: bool

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> SearchHead | None:
        url = environ.get("SPLUNK_URL", "")
        if not url:
            return None
        if environ.get("SPLUNK_TOKEN"):
            credentials = {"splunkToken": environ["SPLUNK_TOKEN"]}
        elif environ.get("SPLUNK_USERNAME") and environ.get("SPLUNK_PASSWORD"):
            credentials = {
                "username": environ["SPLUNK_USERNAME"],
                "password": environ["SPLUNK_PASSWORD"],
            }
        else:
            raise LiveError("SPLUNK_URL needs SPLUNK_USERNAME and SPLUNK_PASSWORD, or SPLUNK_TOKEN")
        scheme, _, rest = url.rpartition("://")
        host, _, port = rest.rstrip("/").partition(":")
        if not host or not (port or "8089").isdigit():
            raise LiveError(f"SPLUNK_URL {url!r} is not like https://splunk.example.com:8089")
        verify = environ.get("SPLUNK_VERIFY_TLS", "true").lower() not in {"0", "false", "no"}
        return cls(host, int(port or 8089), scheme or "https", credentials, verify)


class Splunk:
    """The few splunkd endpoints the demo calls, in the app's namespace."""

    def __init__(
        self,
        service: Any,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._service = service
        self._sleep = sleep
        self._clock = clock

    @classmethod
    def connect(cls, head: SearchHead, **timing: Any) -> Splunk:
        handler = binding.handler(timeout=CALL_TIMEOUT_SECONDS, verify=head.verify_tls)
        try:
            service = client.connect(
                host=head.host,
                port=head.port,
                scheme=head.scheme,
                owner="nobody",
                app=APP_ID,
                handler=handler,
                **head.credentials,
            )
        except (binding.HTTPError, binding.AuthenticationError, OSError) as error:
            raise LiveError(
                f"cannot log in to Splunk at {head.host}:{head.port}: {error}"
            ) from None
        return cls(service, **timing)

    def _call(self, method: str, path: str, **query: Any) -> Any:
        try:
            response = getattr(self._service, method)(path, output_mode="json", **query)
            return json.loads(response.body.read())
        except binding.HTTPError as error:
            raise LiveError(f"Splunk answered {error.status} to {path}: {error.reason}") from None
        except (OSError, ValueError) as error:
            raise LiveError(f"Splunk did not answer {path}: {error}") from None

    def index_macro(self) -> str:
        entry = self._call("get", f"configs/conf-macros/{INDEX_MACRO}")["entry"][0]
        return str(entry["content"]["definition"])

    def count_events(self, index: str, start: float, end: float) -> int:
        answer = self._call(
            "post",
            "search/jobs",
            search=f'| tstats count where index="{index}"',
            exec_mode="oneshot",
            earliest_time=f"{start:.3f}",
            latest_time=f"{end:.3f}",
        )
        rows = answer.get("results") or [{"count": 0}]
        return int(rows[0]["count"])

    def wait_until_searchable(
        self, index: str, start: float, end: float, expected: int, deadline: float
    ) -> int:
        """Events of [start, end) in ``index`` once at least ``expected`` are, or at the
        deadline (seconds), however many there are then."""
        until = self._clock() + deadline
        while True:
            found = self.count_events(index, start, end)
            if found >= expected or self._clock() >= until:
                return found
            self._sleep(POLL_SECONDS)

    def run_saved_search(self, name: str, now: float, deadline: float) -> list[dict[str, Any]]:
        """The saved search's results, dispatched as if the scheduler ran it at ``now``."""
        sid = self._call(
            "post",
            "saved/searches/" + binding.UrlEncoded(name, encode_slash=True) + "/dispatch",
            **{"dispatch.now": f"{now:.0f}", "trigger_actions": 0},
        )["sid"]
        until = self._clock() + deadline
        while True:
            content = self._call("get", f"search/jobs/{sid}")["entry"][0]["content"]
            if content.get("isFailed"):
                raise LiveError(f"the saved search {name!r} failed in Splunk")
            if content.get("isDone"):
                break
            if self._clock() >= until:
                raise LiveError(f"the saved search {name!r} did not finish in {deadline:g} s")
            self._sleep(POLL_SECONDS)
        results: list[dict[str, Any]] = self._call("get", f"search/jobs/{sid}/results", count=0)[
            "results"
        ]
        return results
