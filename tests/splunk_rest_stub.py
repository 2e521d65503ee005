"""A loopback stand-in of the splunkd REST endpoints `iot-defender-splunk verify` reaches
through splunk-sdk: login, server info, apps, macros, indexes, saved searches, oneshot search
jobs and the search parser (the v2 search endpoints splunk-sdk uses for Splunk 9.0.2 and later).

Responses are splunkd's own shapes, one fixture file per response under tests/splunk_rest/
(Atom feeds for the configuration endpoints, JSON for search and parser), filled in from a
:class:`SplunkState`. Searches are answered by what they are: ``| tstats count where ... by``
counts the state's events in the job's time range, the ``_audit`` search lists fired alerts,
anything else is an empty result, unless the state says it fails to parse or to run.
Real Splunk runs in the opt-in live suite (tests/test_live_splunk.py).
"""

from __future__ import annotations

import fnmatch
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any, Final
from urllib.parse import quote
from xml.sax.saxutils import escape

from appbuild.build_app import APP_ID, DETECTIONS_DIR, REPORTS_DIR, load_definitions
from tests.loopback_server import LoopbackServer, Request, Response

FIXTURES: Final = Path(__file__).resolve().parent / "splunk_rest"
SPLUNK_VERSION: Final = "9.4.1"
USERNAME: Final = "admin"
PASSWORD: Final = "Lab-Password-2026"
_JSON: Final = "application/json; charset=UTF-8"
_TSTATS = re.compile(r"\|\s*tstats\s+count\s+where\s+(?P<where>.+?)\s+by\s+(?P<by>[\w ]+)$")
_MACRO = re.compile(r"`([^`(]+)`")
_INDEX_TERM = re.compile(r'\bindex\s*=\s*"?([\w*-]+)"?')
_RELATIVE = re.compile(r"^-(\d+)([smhdw])$")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass
class StubApp:
    version: str
    disabled: bool = False


@dataclass
class StubIndex:
    disabled: bool = False


@dataclass(frozen=True)
class StubEvent:
    index: str
    sourcetype: str
    time: float


@dataclass(frozen=True)
class StubSavedSearch:
    name: str
    search: str
    disabled: bool = False
    app: str = APP_ID


@dataclass(frozen=True)
class StubFiring:
    name: str
    time: float
    app: str = APP_ID


@dataclass
class SplunkState:
    """What the stand-in Splunk holds; tests change one thing to make one failure."""

    app: StubApp | None
    macros: dict[str, str] = field(default_factory=lambda: {"iot_defender_index": "index=iot"})
    indexes: dict[str, StubIndex] = field(default_factory=dict)
    events: list[StubEvent] = field(default_factory=list)
    saved_searches: list[StubSavedSearch] = field(default_factory=list)
    firings: list[StubFiring] = field(default_factory=list)
    # A search containing a key fails with the value as splunkd's message: at parse time
    # (search parser and jobs), or when it runs (HTTP 400 FATAL, or 200 with an ERROR message).
    parse_errors: dict[str, str] = field(default_factory=dict)
    run_errors: dict[str, str] = field(default_factory=dict)
    run_messages: dict[str, str] = field(default_factory=dict)
    bearer_token: str | None = None


def app_searches() -> list[StubSavedSearch]:
    """The app's own saved searches (detections, reports and their variants), as it ships them."""
    searches = []
    for definition in load_definitions(DETECTIONS_DIR, REPORTS_DIR):
        spec = definition.spec
        searches.append(
            StubSavedSearch(spec["name"], spec["search"], not spec["schedule"]["enabled"])
        )
        searches += [
            StubSavedSearch(v["name"], v["search"], True) for v in spec.get("variants", [])
        ]
    return searches


def healthy_state(app_version: str) -> SplunkState:
    """A deployment where every check passes: every sourcetype has events in the last hour."""
    now = time.time()
    steady = (
        "aws:iot:defender:metric",
        "aws:iot:defender:audit:task",
        "aws:iot:defender:audit:check",
        "aws:iot:log",
        "aws:iot:lifecycle",
        "aws:iot:cloudwatch:metric",
        "aws:iot:thing",
        "aws:iot:defender:violation",
    )
    events = [StubEvent("iot_security", st, now - 60 * n) for n, st in enumerate(steady, 1)]
    events.append(StubEvent("main", "syslog", now - 30))
    return SplunkState(
        app=StubApp(app_version),
        macros={"iot_defender_index": "index=iot_security"},
        indexes={"main": StubIndex(), "iot_security": StubIndex(), "_audit": StubIndex()},
        events=events,
        saved_searches=app_searches(),
        firings=[
            StubFiring("IoT - New Listening Port On Device", now - 600),
            StubFiring("IoT - New Listening Port On Device", now - 300),
            StubFiring("IoT - Response Action Failed", now - 120),
            StubFiring("IoT - Risky Port Listening", now - 3 * 86400),  # outside 24 h
            StubFiring("Some Other App Alert", now - 60, app="search"),
        ],
    )


def _fixture(name: str) -> Template:
    return Template((FIXTURES / name).read_text(encoding="utf-8"))


def _xml(fixture: str, status: int = 200, **values: object) -> Response:
    text = _fixture(fixture).substitute({k: escape(str(v)) for k, v in values.items()})
    return Response(status, text.encode())


def _feed(title: str, path: str, entries: list[str]) -> Response:
    body = _fixture("feed.xml").substitute(
        title=title, path=escape(path), total=len(entries), entries="".join(entries)
    )
    return Response(200, body.encode())


def _entry(fixture: str, **values: object) -> str:
    return _fixture(fixture).substitute({k: escape(str(v)) for k, v in values.items()})


def _json(fixture: str, status: int = 200, **values: object) -> Response:
    text = _fixture(fixture).substitute({k: json.dumps(v) for k, v in values.items()})
    return Response(status, text.encode(), _JSON)


def _not_found(message: str) -> Response:
    return _xml("not_found.xml", 404, message=message)


def _when(value: str | None, now: float, default: float) -> float:
    """A job's earliest_time / latest_time: epoch seconds, "now" or a relative -<n><unit>."""
    if value is None or value == "":
        return default
    if value == "now":
        return now
    relative = _RELATIVE.match(value)
    if relative:
        return now - int(relative.group(1)) * _UNITS[relative.group(2)]
    return float(value)


def _pipeline(search: str) -> list[str]:
    """The search's commands: the first word of every stage outside quotes and brackets."""
    stages: list[str] = []
    current: list[str] = []
    depth, quoted = 0, False
    for char in search:
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "[":
            depth += 1
        elif not quoted and char == "]":
            depth -= 1
        if char == "|" and not quoted and depth == 0:
            stages.append("".join(current))
            current = []
        else:
            current.append(char)
    stages.append("".join(current))
    return [stage.split()[0] for stage in stages if stage.split()]


class SplunkRestStub:
    """The stand-in, serving ``state`` on loopback; the state may change between requests."""

    def __init__(self, state: SplunkState) -> None:
        self.state = state
        self.session_key = uuid.uuid4().hex
        self._server = LoopbackServer(self.respond)
        self.url = self._server.url

    def __enter__(self) -> SplunkRestStub:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._server.stop()

    @property
    def requests(self) -> list[Request]:
        return self._server.requests

    # --- routing ---------------------------------------------------------------------------

    def respond(self, request: Request) -> Response:
        if request.path == "/services/auth/login" and request.method == "POST":
            return self._login(request.params())
        if not self._authorized(request.headers.get("authorization", "")):
            return _xml("unauthorized.xml", 401)
        path = request.path.rstrip("/")
        if path == "/services/server/info":
            return _xml("server_info.xml", version=SPLUNK_VERSION)
        namespace, endpoint = self._split(path)
        if namespace == APP_ID and self.state.app is None:
            return _not_found(f"Application does not exist: {namespace}")
        return self._endpoint(request, path, endpoint)

    def _endpoint(self, request: Request, path: str, endpoint: str) -> Response:
        params = request.params()
        prefixes: dict[str, Callable[[str], Response]] = {
            "apps/local/": lambda name: self._app(path, name),
            "configs/conf-macros/": lambda name: self._macro(path, name),
        }
        for prefix, answer in prefixes.items():
            if endpoint.startswith(prefix):
                return answer(endpoint.removeprefix(prefix))
        routes: dict[tuple[str, str], Callable[[], Response]] = {
            ("GET", "data/indexes"): lambda: self._indexes(path),
            ("GET", "saved/searches"): lambda: self._saved_searches(path),
            ("POST", "search/v2/jobs"): lambda: self._oneshot(params),
            ("POST", "search/v2/parser"): lambda: self._parse(params.get("q", "")),
        }
        route = routes.get((request.method, endpoint))
        return route() if route else _not_found(f"Not Found: {path}")

    @staticmethod
    def _split(path: str) -> tuple[str | None, str]:
        """(app, endpoint) of a /servicesNS/<owner>/<app>/ path; app None for /services/."""
        parts = path.split("/")
        if len(parts) > 4 and parts[1] == "servicesNS":
            return parts[3], "/".join(parts[4:])
        return None, "/".join(parts[2:])

    def _authorized(self, header: str) -> bool:
        scheme, _, credential = header.partition(" ")
        if scheme == "Splunk":
            return credential == self.session_key
        token = self.state.bearer_token
        return scheme == "Bearer" and token is not None and credential == token

    def _login(self, params: dict[str, str]) -> Response:
        if params.get("username") == USERNAME and params.get("password") == PASSWORD:
            return _xml("auth_login.xml", session_key=self.session_key)
        return _xml("auth_login_failed.xml", 401)

    # --- configuration endpoints --------------------------------------------------------------

    def _app(self, path: str, name: str) -> Response:
        app = self.state.app
        if name != APP_ID or app is None:
            return _not_found(f"Could not find object id={name}")
        entry = _entry("entry_app.xml", name=name, version=app.version, disabled=int(app.disabled))
        return _feed("localapps", path, [entry])

    def _macro(self, path: str, name: str) -> Response:
        definition = self.state.macros.get(name)
        if definition is None:
            return _not_found(f"Could not find object id={name}")
        entry = _entry("entry_macro.xml", name=name, app=APP_ID, definition=definition)
        return _feed("conf-macros", path, [entry])

    def _indexes(self, path: str) -> Response:
        entries = []
        for name, index in sorted(self.state.indexes.items()):
            times = [event.time for event in self.state.events if event.index == name]
            entries.append(
                _entry(
                    "entry_index.xml",
                    name=name,
                    disabled=int(index.disabled),
                    total=len(times),
                    size_mb=1 if times else 0,
                    max_time=_iso(max(times)) if times else "",
                    min_time=_iso(min(times)) if times else "",
                )
            )
        return _feed("indexes", path, entries)

    def _saved_searches(self, path: str) -> Response:
        entries = [
            _entry(
                "entry_saved_search.xml",
                name=saved.name,
                quoted=quote(saved.name, safe=""),
                app=APP_ID,
                owner_app=saved.app,
                alert=1,
                disabled=int(saved.disabled),
                search=saved.search,
            )
            for saved in self.state.saved_searches
        ]
        return _feed("savedsearch", path, entries)

    # --- search ---------------------------------------------------------------------------------

    def _failure(self, search: str, errors: dict[str, str]) -> str | None:
        return next((message for marker, message in errors.items() if marker in search), None)

    def _parse(self, search: str) -> Response:
        message = self._failure(search, self.state.parse_errors)
        if message is not None:
            return _json("search_fatal.json", 400, text=message)
        commands = [
            {"command": name, "rawargs": "", "pipeline": "streaming", "isGenerating": i == 0}
            for i, name in enumerate(_pipeline(search))
        ]
        return _json(
            "parser.json",
            remote=f"litsearch {search}",
            events=search,
            reports="",
            commands=commands,
        )

    def _oneshot(self, params: dict[str, str]) -> Response:
        if params.get("exec_mode") != "oneshot":
            return _not_found("only oneshot jobs are served by the stand-in")
        search = params.get("search", "")
        failure = self._failure(search, self.state.parse_errors | self.state.run_errors)
        if failure is not None:
            return _json("search_fatal.json", 400, text=failure)
        now = time.time()
        window = (
            _when(params.get("earliest_time"), now, 0),
            _when(params.get("latest_time"), now, now),
        )
        message = self._failure(search, self.state.run_messages)
        messages = [{"type": "ERROR", "text": message}] if message else []
        tstats = _TSTATS.search(search)
        if tstats:
            rows = self._tstats(tstats.group("where"), tstats.group("by").split(), window)
        elif "index=_audit" in search:
            rows = self._fired(search, window)
        else:
            rows = []
        fields = [{"name": name} for name in (rows[0] if rows else {})]
        return _json("search_results.json", messages=messages, fields=fields, results=rows)

    def _tstats(
        self, where: str, by: list[str], window: tuple[float, float]
    ) -> list[dict[str, str]]:
        expanded = _MACRO.sub(lambda m: self.state.macros.get(m.group(1), ""), where)
        patterns = _INDEX_TERM.findall(expanded)
        counts: dict[tuple[str, ...], int] = {}
        for event in self.state.events:
            named = any(fnmatch.fnmatchcase(event.index, pattern) for pattern in patterns)
            if named and window[0] <= event.time < window[1]:
                key = tuple(str(getattr(event, name)) for name in by)
                counts[key] = counts.get(key, 0) + 1
        return [dict(zip([*by, "count"], [*key, str(n)], strict=True)) for key, n in counts.items()]

    def _fired(self, search: str, window: tuple[float, float]) -> list[dict[str, Any]]:
        app = re.search(r'ss_app="([^"]*)"', search)
        rows: dict[str, list[float]] = {}
        for firing in self.state.firings:
            if app and firing.app == app.group(1) and window[0] <= firing.time < window[1]:
                rows.setdefault(firing.name, []).append(firing.time)
        return [
            {"ss_name": name, "fired": str(len(times)), "last": f"{max(times):.3f}"}
            for name, times in sorted(rows.items())
        ]


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(epoch))
