"""A loopback stand-in for the few splunkd REST endpoints the demo calls through splunk-sdk:
login, the app's iot_defender_index macro, a oneshot count, and saved-search dispatch with
its job status and results. Answers are set per test; every request is recorded. Paths are
decoded as splunkd decodes them ('+' is a space, as splunk-sdk encodes entity names)."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, unquote_plus, urlsplit

APP_PATH = "/servicesNS/nobody/iot_defender_security/"
SESSION = "stub-session-key"


@dataclass(frozen=True)
class StubRequest:
    method: str
    path: str
    form: Mapping[str, str]
    authorization: str | None


@dataclass
class SplunkAnswers:
    """What the stand-in answers: the macro, the searchable count, results per saved search."""

    macro: str = "index=iot_security"
    searchable: int = 0  # the oneshot count, unless ``counts`` still holds answers
    counts: list[int] = field(default_factory=list)  # answered (and used up) in turn
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    password: str = "changeme-demo"


class SplunkDemoStub:
    def __init__(self, answers: SplunkAnswers) -> None:
        self.answers = answers
        self.requests: list[StubRequest] = []
        self._jobs: dict[str, str] = {}
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub._handle(self, "GET")

            def do_POST(self) -> None:
                stub._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def dispatched(self) -> list[StubRequest]:
        return [r for r in self.requests if r.path.endswith("/dispatch")]

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        query = {**parse_qs(parts.query), **parse_qs(body)}
        form = {key: values[-1] for key, values in query.items()}
        path = unquote_plus(parts.path)
        request = StubRequest(method, path, form, handler.headers["Authorization"])
        with self._lock:
            self.requests.append(request)
            status, payload, content_type = self._answer(request)
        data = payload.encode()
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _answer(self, request: StubRequest) -> tuple[int, str, str]:
        if request.path == "/services/auth/login":
            if request.form.get("password") != self.answers.password:
                return 401, "<response><messages/></response>", "text/xml"
            return 200, f"<response><sessionKey>{SESSION}</sessionKey></response>", "text/xml"
        if request.authorization != f"Splunk {SESSION}":
            return 401, json.dumps({"messages": [{"text": "unauthorized"}]}), "application/json"
        path = request.path.removeprefix(APP_PATH)
        return 200, json.dumps(self._json(request.method, path, request.form)), "application/json"

    def _json(self, method: str, path: str, form: Mapping[str, str]) -> object:
        if path == "configs/conf-macros/iot_defender_index":
            return {"entry": [{"content": {"definition": self.answers.macro}}]}
        if path == "search/jobs" and form.get("exec_mode") == "oneshot":
            count = self.answers.counts.pop(0) if self.answers.counts else self.answers.searchable
            return {"results": [{"count": str(count)}]}
        if path.startswith("saved/searches/") and path.endswith("/dispatch"):
            name = path.removeprefix("saved/searches/").removesuffix("/dispatch")
            sid = f"demo-{len(self._jobs) + 1}"
            self._jobs[sid] = name
            return {"sid": sid}
        if path.startswith("search/jobs/") and path.endswith("/results"):
            name = self._jobs[path.split("/")[2]]
            return {"results": self.answers.results.get(name, [])}
        if path.startswith("search/jobs/"):
            return {"entry": [{"content": {"isDone": True, "isFailed": False}}]}
        return {"messages": [{"type": "ERROR", "text": f"no stand-in for {method} {path}"}]}
