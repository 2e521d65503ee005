"""A loopback stand-in of the splunkd REST endpoints the operator tools reach through
splunk-sdk: for `iot-defender-splunk verify` login, server info, apps, macros, indexes, saved
searches, oneshot search jobs and the search parser (the v2 search endpoints splunk-sdk uses
for Splunk 9.0.2 and later); for the demo (iot_defender_splunk/story/live.py) the macro in
JSON, the v1 oneshot job, and saved-search dispatch with its job status and results.

Responses are splunkd's own shapes, one fixture file per response under tests/splunk_rest/
(Atom feeds for the configuration endpoints, JSON for search, parser and jobs, and JSON
wherever the client asks ``output_mode=json``), filled in from a :class:`SplunkState`.
Searches are answered by what they are: ``| tstats count where ... [by ...]`` counts the
searchable events in the job's time range, the ``_audit`` search lists fired alerts, anything
else is an empty result, unless the state says it fails to parse or to run. A dispatched saved
search answers the rows the state gives it (the stand-in cannot run a detection's SPL). Paths
are decoded as splunkd decodes them: '+' is a space, as splunk-sdk encodes entity names.
Real Splunk runs in the opt-in live suite (tests/test_live_splunk.py).
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any, Final
from urllib.parse import quote, unquote_plus
from xml.sax.saxutils import escape

from appbuild.build_app import APP_ID, DETECTIONS_DIR, REPORTS_DIR, load_definitions
from tests.hec_server import HecStub, Payload
from tests.loopback_server import LoopbackServer, Request, Response

FIXTURES: Final = Path(__file__).resolve().parent / "splunk_rest"
SPLUNK_VERSION: Final = "9.4.1"
USERNAME: Final = "admin"
PASSWORD: Final = "Lab-Password-2026"
# What Splunk gives a HEC event that names no index or sourcetype (a token without defaults).
HEC_DEFAULT_INDEX: Final = "main"
HEC_DEFAULT_SOURCETYPE: Final = "httpevent"
_JSON: Final = "application/json; charset=UTF-8"
_TSTATS = re.compile(r"\|\s*tstats\s+count\s+where\s+(?P<where>[^|]+?)(?:\s+by\s+(?P<by>[\w ]+))?$")
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


@dataclass(frozen=True)
class StubJob:
    """A dispatched saved search, with the parameters it was dispatched with."""

    saved: StubSavedSearch
    request: dict[str, str]


@dataclass
class SplunkState:
    """What the stand-in Splunk holds; tests change one thing to make one failure."""

    app: StubApp | None
    macros: dict[str, str] = field(default_factory=lambda: {"iot_defender_index": "index=iot"})
    indexes: dict[str, StubIndex] = field(default_factory=dict)
    events: list[StubEvent] = field(default_factory=list)
    # Events still being indexed: after each oneshot search the next batch becomes searchable,
    # as a real indexer catches up while a client polls.
    indexing: list[list[StubEvent]] = field(default_factory=list)
    saved_searches: list[StubSavedSearch] = field(default_factory=list)
    # The rows a dispatched saved search returns, by its name.
    saved_search_results: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    jobs: dict[str, StubJob] = field(default_factory=dict)  # by sid, as dispatched
    firings: list[StubFiring] = field(default_factory=list)
    # A search containing a key fails with the value as splunkd's message: at parse time
    # (search parser and jobs), or when it runs (HTTP 400 FATAL, or 200 with an ERROR message;
    # a dispatched job fails).
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


def installed_state(app_version: str) -> SplunkState:
    """The app freshly installed: its macro on iot_security and its saved searches, no data."""
    return SplunkState(
        app=StubApp(app_version),
        macros={"iot_defender_index": "index=iot_security"},
        saved_searches=app_searches(),
    )


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
    state = installed_state(app_version)
    state.indexes = {"main": StubIndex(), "iot_security": StubIndex(), "_audit": StubIndex()}
    state.events = [StubEvent("iot_security", st, now - 60 * n) for n, st in enumerate(steady, 1)]
    state.events.append(StubEvent("main", "syslog", now - 30))
    state.firings = [
        StubFiring("IoT - New Listening Port On Device", now - 600),
        StubFiring("IoT - New Listening Port On Device", now - 300),
        StubFiring("IoT - Response Action Failed", now - 120),
        StubFiring("IoT - Risky Port Listening", now - 3 * 86400),  # outside 24 h
        StubFiring("Some Other App Alert", now - 60, app="search"),
    ]
    return state


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


def _json_text(fixture: str, **values: object) -> str:
    return _fixture(fixture).substitute({k: json.dumps(v) for k, v in values.items()})


def _json(fixture: str, status: int = 200, **values: object) -> Response:
    return Response(status, _json_text(fixture, **values).encode(), _JSON)


def _json_feed(path: str, entries: list[str]) -> Response:
    body = _fixture("feed.json").substitute(
        origin=json.dumps(f"https://127.0.0.1:8089{path}"),
        create=json.dumps(f"{path}/_new"),
        reload=json.dumps(f"{path}/_reload"),
        total=len(entries),
        entries="[" + ",".join(entries) + "]",
    )
    return Response(200, body.encode(), _JSON)


def _message(status: int, kind: str, text: str, *, as_json: bool) -> Response:
    """splunkd's error answer: one message, in the output mode the client asked for."""
    if as_json:
        return _json("messages.json", status, type=kind, text=text)
    return _xml("messages.xml", status, type=kind, text=text)


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


def _hec_event(payload: Payload, now: float) -> StubEvent:
    """A HEC event as Splunk indexes it; one without ``time`` is stamped when it is searched."""
    return StubEvent(
        index=str(payload.get("index", HEC_DEFAULT_INDEX)),
        sourcetype=str(payload.get("sourcetype", HEC_DEFAULT_SOURCETYPE)),
        time=float(payload.get("time", now)),
    )


@dataclass(frozen=True)
class _Call:
    """One authenticated request as an endpoint sees it."""

    method: str
    path: str  # decoded as splunkd decodes it
    params: dict[str, str]
    name: str = ""  # the entity (app, macro, saved search, sid) the path names

    @property
    def as_json(self) -> bool:
        return self.params.get("output_mode") == "json"

    def json_only(self) -> None:
        """Endpoints the suite reads as JSON only: a client asking for XML is not served."""
        if not self.as_json:
            raise NotImplementedError(f"the stand-in serves {self.path} with output_mode=json")


_Route = tuple[str, re.Pattern[str], Callable[[_Call], Response]]
_JobAnswer = Callable[[_Call, StubJob, str | None], Response]


class SplunkRestStub(LoopbackServer):
    """The stand-in, serving ``state`` on loopback; the state may change between requests.

    With ``hec``, what that HEC stub indexed is searchable too, as on the Splunk behind it.
    Requests are answered one at a time, so the state never changes under an answer.
    """

    def __init__(self, state: SplunkState, *, hec: HecStub | None = None) -> None:
        self.state = state
        self.session_key = uuid.uuid4().hex
        self._hec = hec
        self._lock = threading.Lock()
        self._routes = self._route_table()
        super().__init__(self.respond)

    # --- routing ---------------------------------------------------------------------------

    def respond(self, request: Request) -> Response:
        with self._lock:
            return self._answer(request)

    def _answer(self, request: Request) -> Response:
        params = request.params()
        as_json = params.get("output_mode") == "json"
        path = unquote_plus(request.raw_path).rstrip("/")
        if path == "/services/auth/login" and request.method == "POST":
            return self._login(params)
        if not self._authorized(request.headers.get("authorization", "")):
            return _message(401, "WARN", "call not properly authenticated", as_json=as_json)
        if path == "/services/server/info":
            return _xml("server_info.xml", version=SPLUNK_VERSION)
        namespace, endpoint = self._split(path)
        if namespace == APP_ID and self.state.app is None:
            return _message(
                404, "ERROR", f"Application does not exist: {namespace}", as_json=as_json
            )
        for method, pattern, answer in self._routes:
            matched = pattern.fullmatch(endpoint)
            if matched and method == request.method:
                return answer(_Call(method, path, params, next(iter(matched.groups()), "")))
        return _message(404, "ERROR", f"Not Found: {path}", as_json=as_json)

    def _route_table(self) -> list[_Route]:
        routes: list[tuple[str, str, Callable[[_Call], Response]]] = [
            ("GET", r"apps/local/([^/]+)", self._app),
            ("GET", r"configs/conf-macros/([^/]+)", self._macro),
            ("GET", r"data/indexes", self._indexes),
            ("GET", r"saved/searches", self._saved_searches),
            ("POST", r"saved/searches/(.+)/dispatch", self._dispatch),
            ("POST", r"search/jobs", self._oneshot),
            ("POST", r"search/v2/jobs", self._oneshot),
            ("GET", r"search/jobs/([^/]+)", lambda call: self._with_job(call, self._job)),
            (
                "GET",
                r"search/jobs/([^/]+)/results",
                lambda call: self._with_job(call, self._results),
            ),
            ("POST", r"search/v2/parser", self._parse),
        ]
        return [(method, re.compile(pattern), answer) for method, pattern, answer in routes]

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

    def _app(self, call: _Call) -> Response:
        app = self.state.app
        if call.name != APP_ID or app is None:
            return _not_found(call)
        entry = _entry(
            "entry_app.xml", name=call.name, version=app.version, disabled=int(app.disabled)
        )
        return _feed("localapps", call.path, [entry])

    def _macro(self, call: _Call) -> Response:
        definition = self.state.macros.get(call.name)
        if definition is None:
            return _not_found(call)
        if call.as_json:
            link = call.path
            entry = _json_text(
                "entry_macro.json",
                name=call.name,
                id=f"https://127.0.0.1:8089{link}",
                link=link,
                reload=f"{link}/_reload",
                disable=f"{link}/disable",
                app=APP_ID,
                definition=definition,
            )
            return _json_feed(call.path.rpartition("/")[0], [entry])
        entry = _entry("entry_macro.xml", name=call.name, app=APP_ID, definition=definition)
        return _feed("conf-macros", call.path, [entry])

    def _indexes(self, call: _Call) -> Response:
        searchable = self._searchable()
        entries = []
        for name, index in sorted(self.state.indexes.items()):
            times = [event.time for event in searchable if event.index == name]
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
        return _feed("indexes", call.path, entries)

    def _saved_searches(self, call: _Call) -> Response:
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
        return _feed("savedsearch", call.path, entries)

    # --- search ---------------------------------------------------------------------------------

    def _failure(self, search: str, errors: dict[str, str]) -> str | None:
        return next((message for marker, message in errors.items() if marker in search), None)

    def _parse(self, call: _Call) -> Response:
        search = call.params.get("q", "")
        message = self._failure(search, self.state.parse_errors)
        if message is not None:
            return _json("messages.json", 400, type="FATAL", text=message)
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

    def _oneshot(self, call: _Call) -> Response:
        params = call.params
        if params.get("exec_mode") != "oneshot":
            return _message(404, "ERROR", "only oneshot jobs are served", as_json=call.as_json)
        search = params.get("search", "")
        failure = self._failure(search, self.state.parse_errors | self.state.run_errors)
        if failure is not None:
            return _json("messages.json", 400, type="FATAL", text=failure)
        now = time.time()
        window = (
            _when(params.get("earliest_time"), now, 0),
            _when(params.get("latest_time"), now, now),
        )
        message = self._failure(search, self.state.run_messages)
        messages = [{"type": "ERROR", "text": message}] if message else []
        tstats = _TSTATS.search(search)
        if tstats:
            by = (tstats.group("by") or "").split()
            rows = self._tstats(tstats.group("where"), by, window)
        elif "index=_audit" in search:
            rows = self._fired(search, window)
        else:
            rows = []
        if self.state.indexing:
            self.state.events += self.state.indexing.pop(0)
        return _search_results(rows, messages)

    def _searchable(self) -> list[StubEvent]:
        now = time.time()
        indexed = self._hec.events if self._hec is not None else []
        return self.state.events + [_hec_event(payload, now) for payload in indexed]

    def _tstats(
        self, where: str, by: list[str], window: tuple[float, float]
    ) -> list[dict[str, str]]:
        """tstats count: one row per ``by`` group, or one row (even of 0) without ``by``."""
        expanded = _MACRO.sub(lambda m: self.state.macros.get(m.group(1), ""), where)
        patterns = _INDEX_TERM.findall(expanded)
        counts = Counter(
            tuple(str(getattr(event, name)) for name in by)
            for event in self._searchable()
            if any(fnmatch.fnmatchcase(event.index, pattern) for pattern in patterns)
            and window[0] <= event.time < window[1]
        )
        if not by:
            return [{"count": str(counts[()])}]
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

    # --- dispatched saved searches ------------------------------------------------------------

    def _dispatch(self, call: _Call) -> Response:
        call.json_only()
        saved = next((s for s in self.state.saved_searches if s.name == call.name), None)
        if saved is None:
            return _not_found(call)
        sid = f"admin__admin__{APP_ID}__RMD5{uuid.uuid4().hex[:16]}"
        self.state.jobs[sid] = StubJob(saved, dict(call.params))
        return _json("dispatch.json", 201, sid=sid)

    def _with_job(self, call: _Call, answer: _JobAnswer) -> Response:
        """Answer about the job ``call`` names, and whether (why) its search fails to run."""
        call.json_only()
        job = self.state.jobs.get(call.name)
        if job is None:
            return _message(404, "FATAL", "Unknown sid.", as_json=True)
        return answer(call, job, self._failure(job.saved.search, self.state.run_errors))

    def _job(self, call: _Call, job: StubJob, failure: str | None) -> Response:
        jobs = call.path.rpartition("/")[0]
        return _json(
            "job.json",
            origin=f"https://127.0.0.1:8089{jobs}",
            id=f"https://127.0.0.1:8089{call.path}",
            link=call.path,
            results=f"{call.path}/results",
            control=f"{call.path}/control",
            search=job.saved.search,
            state="FAILED" if failure else "DONE",
            failed=failure is not None,
            label=job.saved.name,
            messages=[{"type": "FATAL", "text": failure}] if failure else [],
            request=job.request,
            count=0 if failure else len(self._job_rows(job)),
            sid=call.name,
            app=APP_ID,
        )

    def _results(self, call: _Call, job: StubJob, failure: str | None) -> Response:
        if failure is not None:
            return _search_results([], [{"type": "FATAL", "text": failure}])
        return _search_results(self._job_rows(job), [])

    def _job_rows(self, job: StubJob) -> list[dict[str, str]]:
        return self.state.saved_search_results.get(job.saved.name, [])


def _not_found(call: _Call) -> Response:
    return _message(404, "ERROR", f"Could not find object id={call.name}", as_json=call.as_json)


def _search_results(rows: list[dict[str, Any]], messages: list[dict[str, str]]) -> Response:
    fields = [{"name": name} for name in (rows[0] if rows else {})]
    return _json("search_results.json", messages=messages, fields=fields, results=rows)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(epoch))
