"""A stand-in for SOAR's playbook runtime (``phantom.rules``), to run exported playbooks offline.

SOAR ships no runtime or stub of ``phantom.rules`` outside the platform, so this models the
calls the playbooks in ``soar/playbooks`` make, as SOAR's playbook API documents them, and the
AWS Lambda app's ``invoke lambda`` action (its parameters and ``action_result`` layout):

- ``act`` runs the action at once: every parameter set goes to the scripted Lambda, the action
  results are stored under the block's name, then the callback is called, as SOAR calls it when
  the action completes;
- ``prompt2`` answers from the scripted answers (user and responses, or no answer: expired);
- ``collect2``, ``condition``, ``decision`` and ``format`` resolve the datapaths the playbooks
  use: artifact CEF fields and an artifact's whole CEF (``artifact:*.cef``, a copy of its dict),
  filtered or not, action results, code block outputs (``<block>:custom_function:<name>``),
  formatted data and the container's id and name;
- run data, format data, ``completed``, ``add_note`` and ``comment`` behave as in a playbook
  run; ``playbook_block`` records the order blocks run in.

It is strict: a call, action, asset or datapath it does not model raises, so no playbook can
depend on behaviour nobody checked. Every call is recorded in ``Soar.calls``.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

LAMBDA_ACTION = "invoke lambda"
LAMBDA_ASSETS = ["aws_lambda"]
_INVOKE_KEYS = {"function_name", "invocation_type", "payload"}
_FILTERED = re.compile(r"filtered-data:(?P<block>\w+):(?P<condition>condition_\d+):(?P<path>.+)")
_ARTIFACT = re.compile(r"artifact:\*\.(?P<path>cef(?:\.[^.]+)?|id)")
_RESULT = re.compile(r"(?P<block>\w+):action_result\.(?P<path>.+)")
_OUTPUT = re.compile(r"(?P<block>\w+):custom_function:(?P<name>\w+)")
_FORMATTED = re.compile(r"(?P<block>\w+):formatted_data")


@dataclass(frozen=True)
class Artifact:
    id: int
    cef: dict[str, Any]


@dataclass(frozen=True)
class Invocation:
    """One ``invoke lambda`` result, shaped as the AWS Lambda app (2.2.10) stores it."""

    status: str  # "success" or "failed"
    message: str
    data: list[dict[str, Any]]


def answered(payload: dict[str, Any]) -> Invocation:
    """The function ran and answered: the app JSON-decodes the answer into ``Payload``."""
    return Invocation(
        "success",
        "Successfully invoked lambda",
        [{"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": payload}],
    )


def function_error(message: str) -> Invocation:
    """The function raised: the app marks the action failed and keeps Lambda's error payload."""
    return Invocation(
        "failed",
        "Lambda invoked and returned FunctionError",
        [
            {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "Payload": {"errorMessage": message, "errorType": "Exception"},
            }
        ],
    )


def invoke_failed(message: str) -> Invocation:
    """The Lambda API call itself failed (credentials, throttling, no such function): no data."""
    return Invocation("failed", f"boto3 call to Lambda failed. {message}", [])


@dataclass(frozen=True)
class PromptAnswer:
    user: str
    responses: list[str]


@dataclass(frozen=True)
class Call:
    api: str
    kwargs: dict[str, Any]


Lambda = Callable[[dict[str, Any]], Invocation]


@dataclass
class Soar:
    """One playbook run on one container, with the Lambda and the prompts scripted."""

    container: dict[str, Any]
    artifacts: list[Artifact]
    invoke: Lambda
    # prompt block name -> the analyst's answer; None: nobody answered before it expired.
    prompts: dict[str, PromptAnswer | None] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    run_data: dict[str, str] = field(default_factory=dict)
    formatted: dict[str, str] = field(default_factory=dict)
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    filtered: dict[str, list[int]] = field(default_factory=dict)

    # --- what the tests read -------------------------------------------------------------

    def made(self, api: str) -> list[dict[str, Any]]:
        """The keyword arguments of every call to ``api``, in order."""
        return [call.kwargs for call in self.calls if call.api == api]

    def requests(self, block: str) -> list[dict[str, Any]]:
        """The requests (decoded payloads) the invoke lambda block ``block`` sent."""
        return [
            json.loads(parameter["payload"])
            for act in self.made("act")
            if act["name"] == block
            for parameter in act["parameters"]
        ]

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Every request sent to the responder, in order."""
        return [
            json.loads(parameter["payload"])
            for act in self.made("act")
            for parameter in act["parameters"]
        ]

    @property
    def notes(self) -> list[tuple[str, str]]:
        return [(note["title"], note["content"]) for note in self.made("add_note")]

    @property
    def comments(self) -> list[str]:
        return [comment["comment"] for comment in self.made("comment")]

    # --- phantom.rules ---------------------------------------------------------------------

    def playbook_block(self) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
            @wraps(function)
            def block(*args: Any, **kwargs: Any) -> Any:
                self.trace.append(function.__name__)
                return function(*args, **kwargs)

            return block

        return decorate

    def debug(self, *args: Any, **kwargs: Any) -> None:
        """Debug output goes to the playbook's log in SOAR; nothing here."""

    def save_run_data(self, *, key: str, value: str, auto: bool = True) -> None:
        self._record("save_run_data", key=key, value=value, auto=auto)
        if not isinstance(value, str):
            raise TypeError(f"save_run_data({key!r}) takes a string, not {type(value).__name__}")
        self.run_data[key] = value

    def get_run_data(self, *, key: str) -> str:
        return self.run_data.get(key, "")

    def get_format_data(self, *, name: str) -> str:
        return self.formatted[name]

    def completed(self, *, action_names: list[str]) -> bool:
        """Whether every named action ran and finished (an action never launched has not)."""
        self._record("completed", action_names=action_names)
        return all(name in self.results for name in action_names)

    def collect2(
        self,
        container: dict[str, Any],
        *,
        datapath: list[str],
        action_results: Any = None,
    ) -> list[list[Any]]:
        self._record("collect2", datapath=datapath)
        self._same_container(container)
        return self._rows(datapath)

    def condition(
        self,
        container: dict[str, Any],
        *,
        conditions: list[list[Any]],
        name: str,
        logical_operator: str = "and",
        delimiter: str | None = None,
    ) -> tuple[list[int], list[Any]]:
        """A filter's condition over the artifacts; the matches are kept under ``name``."""
        self._record(
            "condition", conditions=conditions, name=name, logical_operator=logical_operator
        )
        self._same_container(container)
        matched = []
        for artifact in self.artifacts:
            outcomes = [
                _compare(self._artifact_value(artifact, lhs), op, rhs)
                for lhs, op, rhs in conditions
            ]
            if _combine(outcomes, logical_operator):
                matched.append(artifact.id)
        self.filtered[name] = matched
        return matched, []

    def decision(
        self,
        container: dict[str, Any],
        *,
        conditions: list[list[Any]],
        logical_operator: str = "and",
        delimiter: str | None = None,
    ) -> bool:
        self._record("decision", conditions=conditions, logical_operator=logical_operator)
        self._same_container(container)
        outcomes = [
            any(_compare(value, op, rhs) for value in self._values(lhs) or [None])
            for lhs, op, rhs in conditions
        ]
        return _combine(outcomes, logical_operator)

    def format(
        self, *, container: dict[str, Any], template: str, parameters: list[str], name: str
    ) -> str:
        self._record("format", template=template, parameters=parameters, name=name)
        self._same_container(container)
        self.formatted[name] = self._render(template, parameters)
        return self.formatted[name]

    def prompt2(
        self,
        container: dict[str, Any],
        *,
        user: str | None,
        message: str,
        respond_in_mins: int,
        name: str,
        parameters: list[str],
        response_types: list[dict[str, Any]],
        role: str | None = None,
        callback: Callable[..., Any] | None = None,
    ) -> None:
        rendered = self._render(message, parameters)
        self._record(
            "prompt2",
            user=user,
            role=role,
            message=rendered,
            respond_in_mins=respond_in_mins,
            name=name,
            response_types=response_types,
        )
        self._same_container(container)
        if not (user or role):
            raise ValueError(f"prompt {name!r} has neither a user nor a role to ask")
        answer = self.prompts[name]  # a test scripts every prompt the playbook reaches
        result: dict[str, Any]
        if answer is None:
            result = {"status": "failed", "message": "Prompt expired", "summary": {}, "data": []}
        else:
            if len(answer.responses) != len(response_types):
                raise ValueError(f"prompt {name!r} asks {len(response_types)} questions")
            result = {
                "status": "success",
                "message": "Prompt answered",
                "summary": {"responses": list(answer.responses)},
                "data": [{"user": answer.user, "responses": list(answer.responses)}],
            }
        result["parameter"] = {"message": rendered}
        self._finish(name, [result], callback)

    def act(
        self,
        action: str,
        *,
        parameters: list[dict[str, Any]],
        name: str,
        assets: list[str],
        callback: Callable[..., Any] | None = None,
    ) -> None:
        self._record("act", action=action, parameters=parameters, name=name, assets=assets)
        if action != LAMBDA_ACTION or assets != LAMBDA_ASSETS:
            raise ValueError(f"{name}: only {LAMBDA_ACTION!r} on {LAMBDA_ASSETS} is modelled")
        if not parameters:
            raise ValueError(f"{name}: an action with no parameters runs nothing")
        results = []
        for parameter in parameters:
            if set(parameter) != _INVOKE_KEYS or parameter["invocation_type"] != "RequestResponse":
                raise ValueError(f"{name}: unexpected invoke lambda parameters {parameter}")
            request = json.loads(parameter["payload"])
            if not isinstance(request, dict):
                raise ValueError(f"{name}: the payload is not a JSON object")
            invocation = self.invoke(request)
            results.append(
                {
                    "status": invocation.status,
                    "message": invocation.message,
                    "parameter": dict(parameter),
                    "data": invocation.data,
                    "summary": {},
                }
            )
        self._finish(name, results, callback)

    def add_note(
        self,
        container: dict[str, Any],
        *,
        content: str,
        note_format: str,
        note_type: str,
        title: str,
    ) -> None:
        self._record(
            "add_note", content=content, note_format=note_format, note_type=note_type, title=title
        )
        self._same_container(container)

    def comment(self, *, container: dict[str, Any], comment: str) -> None:
        self._record("comment", comment=comment)
        self._same_container(container)

    # --- the run -----------------------------------------------------------------------------

    def module(self) -> types.ModuleType:
        """``phantom.rules`` as a module whose functions are this run's."""
        rules = types.ModuleType("phantom.rules")
        for api in (
            "playbook_block",
            "debug",
            "save_run_data",
            "get_run_data",
            "get_format_data",
            "completed",
            "collect2",
            "condition",
            "decision",
            "format",
            "prompt2",
            "act",
            "add_note",
            "comment",
        ):
            setattr(rules, api, getattr(self, api))
        return rules

    def run(self, playbook: types.ModuleType) -> None:
        """What SOAR does with a playbook on a container: on_start, then on_finish."""
        playbook.on_start(self.container)
        playbook.on_finish(self.container, summary={})

    def _record(self, api: str, **kwargs: Any) -> None:
        self.calls.append(Call(api, kwargs))

    def _same_container(self, container: dict[str, Any]) -> None:
        if container is not self.container:
            raise ValueError("a block passed a container other than the run's")

    def _finish(
        self, name: str, results: list[dict[str, Any]], callback: Callable[..., Any] | None
    ) -> None:
        if name in self.results:
            raise ValueError(f"action {name!r} ran twice in one playbook run")
        self.results[name] = results
        if callback is not None:
            callback(
                action={"name": name, "action_run_id": len(self.results)},
                success=all(result["status"] == "success" for result in results),
                container=self.container,
                results=results,
                handle=None,
            )

    # --- datapaths ---------------------------------------------------------------------------

    def _artifact_value(self, artifact: Artifact, datapath: str) -> Any:
        match = _ARTIFACT.fullmatch(datapath)
        if match is None:
            raise ValueError(f"not an artifact datapath: {datapath}")
        path = match["path"]
        if path == "id":
            return artifact.id
        if path == "cef":
            return dict(artifact.cef)
        return artifact.cef.get(path[len("cef.") :])

    def _rows(self, datapaths: list[str]) -> list[list[Any]]:
        """collect2: one row per artifact, or per action result (and data item)."""
        filtered = [_FILTERED.fullmatch(d) for d in datapaths]
        if all(filtered):
            keys = {f"{m['block']}:{m['condition']}" for m in filtered if m}
            if len(keys) != 1:
                raise ValueError(f"one collect2 reads one filter's artifacts: {datapaths}")
            kept = set(self.filtered[keys.pop()])
            paths = [m["path"] for m in filtered if m]
            return [
                [self._artifact_value(a, p) for p in paths] for a in self.artifacts if a.id in kept
            ]
        if all(_ARTIFACT.fullmatch(d) for d in datapaths):
            return [[self._artifact_value(a, d) for d in datapaths] for a in self.artifacts]
        matches = [_RESULT.fullmatch(d) for d in datapaths]
        blocks = {m["block"] for m in matches if m}
        if not all(matches) or len(blocks) != 1:
            raise ValueError(f"one collect2 reads one source: {datapaths}")
        paths = [m["path"] for m in matches if m]
        per_item = any(p.startswith("data.*.") for p in paths)
        return [
            [_result_value(result, item, p) for p in paths]
            for result in self.results.get(blocks.pop(), [])
            for item in ((result["data"] or [None]) if per_item else [None])
        ]

    def _values(self, datapath: str) -> list[Any]:
        """A datapath's values, as decisions, formats and prompts see them."""
        if datapath.startswith("container:"):
            return [self.container[datapath.split(":", 1)[1]]]
        if output := _OUTPUT.fullmatch(datapath):
            stored = self.run_data.get(f"{output['block']}:{output['name']}")
            return [] if stored is None else [json.loads(stored)]
        if formatted := _FORMATTED.fullmatch(datapath):
            return [self.formatted[formatted["block"]]]
        return [row[0] for row in self._rows([datapath])]

    def _render(self, template: str, parameters: list[str]) -> str:
        if "%%" in template:
            raise ValueError("repeating template sections are not modelled")
        texts = []
        for parameter in parameters:
            values = self._values(parameter)
            texts.append(", ".join(_text(v) for v in values))
        return template.format(*texts)


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return "" if value is None else str(value)


def _result_value(result: dict[str, Any], item: Any, path: str) -> Any:
    if path.startswith("data.*."):
        current: Any = item
        parts = path[len("data.*.") :].split(".")
    else:
        current = result
        parts = path.split(".")
    for part in parts:
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and part.isdigit():
            current = current[int(part)] if int(part) < len(current) else None
        else:
            return None
    return current


def _empty(value: Any) -> bool:
    return value in (None, "", [])


def _compare(value: Any, op: str, rhs: Any) -> bool:
    # SOAR compares an absent value as empty: `!= ""` is how playbooks test that a field exists.
    if op not in ("==", "!="):
        raise ValueError(f"operator {op!r} is not modelled")
    equal = _empty(value) if rhs == "" else value == rhs
    return equal if op == "==" else not equal


def _combine(outcomes: list[bool], logical_operator: str) -> bool:
    if logical_operator == "and":
        return all(outcomes)
    if logical_operator == "or":
        return any(outcomes)
    raise ValueError(f"logical operator {logical_operator!r} is not modelled")
