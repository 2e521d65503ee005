"""The SOAR playbooks in soar/playbooks: their export, the scanner rules, and offline runs.

- The export: every node of the `.json` graph is one block function of the `.py`, every edge
  joins existing nodes and ports and is a call in the code, start reaches end through every
  block, each block does what its node configures, and custom code is only inside its markers
  and is the node's `userCode`.
- The community repository's scanner rules (phantomcyber/playbooks, PlaybookScanner.robot),
  and its formatting of custom code.
- The metadata (`.yml`): it matches the export; its detections are exactly those wired to the
  playbook, its fields exactly the CEF fields the playbook reads; its first filter keeps the
  alerts of its detections and no other.
- The hand-off: every CEF field a playbook collects by name (`artifact:*.cef.<field>`) is a
  result field of every detection wired to it, in every variant; every other field it reads
  (from the whole CEF, or in its filter) is a result field of at least one of them.
- Offline runs against the stand-in for phantom.rules (tests/phantom_stub.py), on containers of
  artifacts shaped like the feeding detections' results, with the responder's answers and the
  analyst's prompt answers scripted: the exact requests sent to the responder, the prompts, and
  the notes and comments written, on the approve, deny, refused and error paths.
"""

from __future__ import annotations

import ast
import html
import importlib.util
import re
import subprocess
import sys
import types
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from respond import requests as responder_requests
from respond.requests import MAX_FINDINGS, parse_request
from tests.phantom_stub import (
    Artifact,
    Invocation,
    Lambda,
    PromptAnswer,
    Soar,
    answered,
    function_error,
    invoke_failed,
)
from tests.soar_playbooks import (
    NAMES,
    PLAYBOOKS_DIR,
    RELEASES,
    Playbook,
    detection_results,
    playbook,
    wired_detections,
)

# --- the export: the graph matches the code ------------------------------------------------

# The custom code markers, exactly as SOAR writes them and the community scanner reads them.
_BAR = "    " + "#" * 80
CUSTOM_START = f"\n{_BAR}\n    ## Custom Code Start\n{_BAR}\n"
CUSTOM_END = f"{_BAR}\n    ## Custom Code End\n{_BAR}\n"
PLACEHOLDER = "\n    # Write your custom code here...\n\n"
LAMBDA_APP = {
    "connector": "AWS Lambda",
    "connectorConfigs": ["aws_lambda"],
    "connectorId": "069cbeb1-a1c7-429f-b9e8-5a02bafe6daf",
}
ACTION_NODES = {"action", "prompt"}
CONDITION_NODES = {"decision", "filter"}


def _is_block(function: ast.FunctionDef) -> bool:
    return [ast.unparse(d) for d in function.decorator_list] == ["phantom.playbook_block()"]


def _phantom_calls(function: ast.FunctionDef, api: str) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(function)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == api
        and ast.unparse(node.func.value) == "phantom"
    ]


def _keyword(call: ast.Call, name: str) -> Any:
    (value,) = [k.value for k in call.keywords if k.arg == name]
    return ast.literal_eval(value)


def _assigned(function: ast.FunctionDef, name: str) -> Any:
    """The literal a block assigns to `name` (SOAR writes its configuration this way)."""
    (value,) = [
        node.value
        for node in function.body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == name
    ]
    return ast.literal_eval(value)


def _inbound(pb: Playbook) -> dict[str, list[str]]:
    inbound: dict[str, list[str]] = {node_id: [] for node_id in pb.nodes}
    for edge in pb.edges:
        inbound[edge["targetNode"]].append(edge["sourceNode"])
    return inbound


def _callee(pb: Playbook, node_id: str) -> str:
    """What a block calls to reach `node_id`: its function, or its join if it has several inputs."""
    name = pb.function_name(node_id)
    return f"join_{name}" if len(_inbound(pb)[node_id]) > 1 else name


def _called_blocks(pb: Playbook, function: ast.FunctionDef) -> list[str]:
    """The blocks a function calls or hands as callback, in source order."""
    found = []
    for node in ast.walk(function):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in pb.functions:
                found.append((node.lineno, node.col_offset, node.func.id))
            found += [
                (k.value.lineno, k.value.col_offset, k.value.id)
                for k in node.keywords
                if k.arg == "callback" and isinstance(k.value, ast.Name)
            ]
    return [name for *_, name in sorted(found)]


def _reaches(pb: Playbook, start: str, goal: str, avoiding: str | None = None) -> bool:
    seen, todo = set(), [start]
    while todo:
        node_id = todo.pop()
        if node_id == goal:
            return True
        if node_id in seen or node_id == avoiding:
            continue
        seen.add(node_id)
        todo += [e["targetNode"] for e in pb.edges if e["sourceNode"] == node_id]
    return False


def _custom_code(pb: Playbook, function: ast.FunctionDef) -> str | None:
    source = ast.get_source_segment(pb.code, function) or ""
    if CUSTOM_START not in source:
        assert "Custom Code" not in source, f"{function.name}: malformed custom code markers"
        return None
    assert source.count(CUSTOM_START) == source.count(CUSTOM_END) == 1, function.name
    return source.split(CUSTOM_START, 1)[1].split(CUSTOM_END, 1)[0]


@pytest.mark.parametrize("name", NAMES)
def test_each_node_is_one_block_function_and_nothing_else_is(name: str) -> None:
    pb = playbook(name)
    joins = {
        f"join_{pb.function_name(node_id)}"
        for node_id, sources in _inbound(pb).items()
        if len(sources) > 1 and pb.nodes[node_id]["type"] != "end"
    }
    nodes = {pb.function_name(node_id) for node_id in pb.nodes}
    assert set(pb.functions) == nodes | joins
    assert all(_is_block(f) for f in pb.functions.values())
    # Only SOAR's header at module level: the docstring, its imports, the block functions.
    header = [ast.unparse(s) for s in pb.tree.body if not isinstance(s, ast.FunctionDef)]
    assert header[1:] == [
        "import phantom.rules as phantom",
        "import json",
        "from datetime import datetime, timedelta",
    ]
    assert (
        html.unescape(ast.get_docstring(pb.tree) or "") == pb.export["coa"]["data"]["description"]
    )


@pytest.mark.parametrize("name", NAMES)
def test_edges_join_existing_nodes_and_ports(name: str) -> None:
    pb = playbook(name)
    pairs = [(e["sourceNode"], e["targetNode"]) for e in pb.edges]
    assert len(pairs) == len(set(pairs)), "one edge per pair of blocks"
    for edge in pb.edges:
        source, target = edge["sourceNode"], edge["targetNode"]
        assert source in pb.nodes
        assert target in pb.nodes
        assert (edge["sourcePort"], edge["targetPort"]) == (f"{source}_out", f"{target}_in")
        assert edge["id"] == f"port_{source}_to_port_{target}"
        assert pb.nodes[target]["type"] != "start"
        assert pb.nodes[source]["type"] != "end"
        data = pb.nodes[source]["data"]
        if pb.nodes[source]["type"] in CONDITION_NODES:
            (condition,) = edge["conditions"]
            assert condition["index"] in range(len(data["conditions"]))
        else:
            assert "conditions" not in edge
    for node_id, node in pb.nodes.items():
        assert node["id"] == node["data"]["id"] == node_id
        if node["type"] in CONDITION_NODES:
            indexes = sorted(
                e["conditions"][0]["index"] for e in pb.edges if e["sourceNode"] == node_id
            )
            assert indexes == list(range(len(node["data"]["conditions"]))), "one path per condition"


@pytest.mark.parametrize("name", NAMES)
def test_start_reaches_end_through_every_block(name: str) -> None:
    pb = playbook(name)
    (start,) = [n for n, node in pb.nodes.items() if node["type"] == "start"]
    (end,) = [n for n, node in pb.nodes.items() if node["type"] == "end"]
    assert (pb.function_name(start), pb.function_name(end)) == ("on_start", "on_finish")
    for node_id in pb.nodes:
        assert _reaches(pb, start, node_id), f"{pb.function_name(node_id)} is unreachable"
        assert _reaches(pb, node_id, end), f"{pb.function_name(node_id)} never reaches the end"


@pytest.mark.parametrize("name", NAMES)
def test_each_block_calls_the_blocks_its_edges_lead_to(name: str) -> None:
    pb = playbook(name)
    for node_id, node in pb.nodes.items():
        function = pb.functions[pb.function_name(node_id)]
        out = [e for e in pb.edges if e["sourceNode"] == node_id]
        # A decision's or filter's paths in the order of its conditions; the end is not called.
        out.sort(key=lambda e: e.get("conditions", [{"index": 0}])[0]["index"])
        expected = [
            _callee(pb, e["targetNode"]) for e in out if pb.nodes[e["targetNode"]]["type"] != "end"
        ]
        assert _called_blocks(pb, function) == expected, function.name
        if node["type"] in ACTION_NODES:
            (call,) = _phantom_calls(function, "act" if node["type"] == "action" else "prompt2")
            callbacks = [ast.unparse(k.value) for k in call.keywords if k.arg == "callback"]
            assert callbacks == expected, f"{function.name} goes on when its action completes"


@pytest.mark.parametrize("name", NAMES)
def test_joins_run_once_and_wait_only_for_actions_on_every_path(name: str) -> None:
    pb = playbook(name)
    (start,) = [n for n, node in pb.nodes.items() if node["type"] == "start"]
    for node_id, sources in _inbound(pb).items():
        if len(sources) < 2 or pb.nodes[node_id]["type"] == "end":
            continue
        target = pb.function_name(node_id)
        join = pb.functions[f"join_{target}"]
        assert _called_blocks(pb, join) == [target]
        (guard,) = _phantom_calls(join, "get_run_data")
        (mark,) = _phantom_calls(join, "save_run_data")
        assert _keyword(guard, "key") == _keyword(mark, "key") == f"join_{target}_called"
        waits = [_keyword(call, "action_names") for call in _phantom_calls(join, "completed")]
        waited = waits[0] if waits else []
        for action in waited:
            (action_id,) = [n for n in pb.nodes if pb.function_name(n) == action]
            assert pb.nodes[action_id]["type"] in ACTION_NODES
            # On a path without the action the join would wait forever.
            assert not _reaches(pb, start, node_id, avoiding=action_id), (target, action)
        # The join settings: inputs not required are inputs; the others' actions are waited for.
        optional = pb.nodes[node_id]["data"]["advanced"]["notRequiredJoins"]
        inputs = {pb.function_name(s) for s in sources}
        assert set(optional) <= inputs
        required = [s for s in sources if pb.function_name(s) not in optional]
        assert sorted(waited) == sorted({a for s in required for a in _upstream_actions(pb, s)})


def _upstream_actions(pb: Playbook, node_id: str) -> set[str]:
    """The nearest action blocks at or above a block."""
    if pb.nodes[node_id]["type"] in ACTION_NODES:
        return {pb.function_name(node_id)}
    return {a for s in _inbound(pb)[node_id] for a in _upstream_actions(pb, s)}


def _reads(source: str, datapath: str) -> bool:
    """Whether a block's code reads a datapath: in a collect2 list, or a code block's output."""
    return (
        f'"{datapath}"' in source or f'key="{datapath.replace(":custom_function:", ":")}"' in source
    )


def _check_action(pb: Playbook, data: dict[str, Any], function: ast.FunctionDef) -> None:
    assert {k: data[k] for k in LAMBDA_APP} == LAMBDA_APP
    (call,) = _phantom_calls(function, "act")
    assert ast.literal_eval(call.args[0]) == data["action"] == "invoke lambda"
    assert _keyword(call, "name") == data["functionName"]
    assert _keyword(call, "assets") == data["connectorConfigs"]
    assert data["parameters"]["invocation_type"] == "RequestResponse"
    source = ast.get_source_segment(pb.code, function) or ""
    assert _reads(source, data["parameters"]["function_name"])
    assert _reads(source, data["parameters"]["payload"])


def _check_prompt(pb: Playbook, data: dict[str, Any], function: ast.FunctionDef) -> None:
    (call,) = _phantom_calls(function, "prompt2")
    assert _keyword(call, "name") == data["functionName"]
    assert _keyword(call, "respond_in_mins") == data["responseTime"]
    assert _assigned(function, "role") == data["approver"]["value"]
    assert _assigned(function, "message") == data["message"]
    assert _assigned(function, "parameters") == data["parameters"]
    asked = [
        (r["prompt"], r["options"].get("choices", []))
        for r in _assigned(function, "response_types")
    ]
    configured = [(r["responsePrompt"], r.get("responseOptions", [])) for r in data["responses"]]
    assert asked == configured


def _check_format(pb: Playbook, data: dict[str, Any], function: ast.FunctionDef) -> None:
    (call,) = _phantom_calls(function, "format")
    assert _keyword(call, "name") == data["functionName"]
    assert _assigned(function, "template") == data["template"]
    assert _assigned(function, "parameters") == data["parameters"]


def _check_code(pb: Playbook, data: dict[str, Any], function: ast.FunctionDef) -> None:
    saved = [_keyword(call, "key") for call in _phantom_calls(function, "save_run_data")]
    assert saved == [f"{data['functionName']}:{v}" for v in data["outputVariables"]]
    source = ast.get_source_segment(pb.code, function) or ""
    for datapath in data["inputParameters"]:
        assert _reads(source, datapath), datapath


def _check_utility(pb: Playbook, data: dict[str, Any], function: ast.FunctionDef) -> None:
    (api,) = data["utilities"]
    values = data["values"][api]
    source = ast.get_source_segment(pb.code, function) or ""
    (call,) = _phantom_calls(function, api)
    if api == "add_note":
        assert _keyword(call, "title") == values["title"]
        assert _keyword(call, "note_format") == values["note_format"] == "markdown"
        assert _reads(source, values["content"])
    else:
        assert api == "comment"
        assert _reads(source, values["comment"])


def _check_conditions(pb: Playbook, data: dict[str, Any], function: ast.FunctionDef) -> None:
    api = "condition" if data["type"] == "filter" else "decision"
    calls = _phantom_calls(function, api)
    branches = [c for c in data["conditions"] if c.get("type") != "else"]
    assert len(calls) == len(branches)
    for index, (call, branch) in enumerate(zip(calls, branches, strict=True), start=1):
        comparisons = [[c["param"], c["op"], c["value"]] for c in branch["comparisons"]]
        assert _keyword(call, "conditions") == comparisons
        if len(comparisons) > 1:
            assert _keyword(call, "logical_operator") == branch["logic"]
        if api == "condition":
            assert _keyword(call, "name") == f"{data['functionName']}:condition_{index}"


_CHECKS: dict[str, Callable[[Playbook, dict[str, Any], ast.FunctionDef], None]] = {
    "action": _check_action,
    "prompt": _check_prompt,
    "format": _check_format,
    "code": _check_code,
    "utility": _check_utility,
    "decision": _check_conditions,
    "filter": _check_conditions,
}


@pytest.mark.parametrize("name", NAMES)
def test_each_block_does_what_its_node_says(name: str) -> None:
    pb = playbook(name)
    for node in pb.nodes.values():
        if node["type"] not in ("start", "end"):
            data = node["data"]
            _CHECKS[node["type"]](pb, data, pb.functions[data["functionName"]])


@pytest.mark.parametrize("name", NAMES)
def test_custom_code_is_the_nodes_user_code_and_only_inside_its_markers(name: str) -> None:
    pb = playbook(name)
    data = pb.export["coa"]["data"]
    assert "globalCustomCode" not in data
    assert "customCode" not in data
    assert "Global Custom Code" not in pb.code
    for node in pb.nodes.values():
        assert "customCode" not in node, "a block edited outside its custom code markers"
        function = pb.functions[node["data"]["functionName"]]
        custom = _custom_code(pb, function)
        if node["type"] in ("start", "end"):
            assert "userCode" not in node
        if custom is None:
            assert "userCode" not in node
            assert node["type"] in {"start", "decision", "filter", "prompt"}
        else:
            assert custom == node.get("userCode", PLACEHOLDER), function.name
    for join in (f for f in pb.functions if f.startswith("join_")):
        assert _custom_code(pb, pb.functions[join]) is None


# --- the community repository's scanner rules (phantomcyber/playbooks, PlaybookScanner.robot) ----


@pytest.mark.parametrize("name", NAMES)
def test_scanner_playbook_rules(name: str) -> None:
    pb = playbook(name)
    export, data = pb.export, pb.export["coa"]["data"]
    assert re.fullmatch(r"[0-9A-Z][0-9A-Za-z]*(_[0-9A-Z][0-9A-Za-z]*)*", name)
    assert re.fullmatch(r"[0-9A-Z][0-9A-Za-z]*( [0-9A-Z][0-9A-Za-z]*)*", export["category"])
    assert data["description"]
    assert data["notes"]
    assert export["tags"]
    assert export["coa"]["playbook_type"] == "automation"
    assert export["labels"] == ["*"]
    assert export["coa"]["python_version"] == "3"
    blocks = [n for n in pb.nodes.values() if n["type"] not in ("start", "end")]
    assert len(blocks) <= 20


@pytest.mark.parametrize("name", NAMES)
def test_scanner_block_rules(name: str) -> None:
    pb = playbook(name)
    for node in pb.nodes.values():
        if node["type"] in ("start", "end"):
            continue
        advanced = node["data"]["advanced"]
        custom_name = advanced["customName"]
        assert re.fullmatch(r"[0-9a-z]+( [0-9a-z]+){0,3}", custom_name)
        assert node["data"]["functionName"] == custom_name.replace(" ", "_")
        assert advanced["note"], f"{custom_name} has no note"
        if "userCode" in node:
            assert "custom code" in advanced["note"], f"{custom_name}: say it uses custom code"
        for condition in node["data"].get("conditions", []):
            assert condition["customName"], f"{custom_name}: every path is labelled"
        if node["type"] == "action":
            # Asset names are the app's name in lowercase with underscores.
            assert node["data"]["connectorConfigs"] == [
                node["data"]["connector"].lower().replace(" ", "_")
            ]


def _formatted(code: str) -> str:
    """Custom code as the scanner formats it (black's style, here ruff's): inside `if True:`."""
    wrapped = f"if True:\n    print(1)\n{code}    print(2)\n"
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", "custom_code.py", "-"],
        input=wrapped,
        capture_output=True,
        text=True,
        check=True,
        cwd=PLAYBOOKS_DIR.parent.parent,
    )
    return done.stdout.removeprefix("if True:\n    print(1)\n").removesuffix("    print(2)\n")


@pytest.mark.parametrize("name", NAMES)
def test_scanner_custom_code_is_formatted(name: str) -> None:
    pb = playbook(name)
    for node in pb.nodes.values():
        if "userCode" in node:
            code = node["userCode"]
            assert _formatted(code).strip("\n") == code.strip("\n"), node["data"]["functionName"]


# --- the metadata ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_metadata_describes_the_export(name: str) -> None:
    pb = playbook(name)
    meta, data = pb.meta, pb.export["coa"]["data"]
    assert meta["name"] == name.replace("_", " ")
    assert meta["playbook"] == name
    assert uuid.UUID(meta["id"]).version == 4
    assert " ".join(meta["description"].split()) == data["description"]
    apps = {n["data"]["connector"] for n in pb.nodes.values() if n["type"] == "action"}
    assert meta["app_list"] == sorted(apps)
    tags = meta["tags"]
    assert (tags["playbook_type"], tags["vpe_type"], tags["product"]) == (
        "Automation",
        "Modern",
        ["Splunk SOAR"],
    )
    assert meta["type"] == "Response"
    assert meta["how_to_implement"]


@pytest.mark.parametrize("name", NAMES)
def test_metadata_lists_the_detections_wired_to_the_playbook(name: str) -> None:
    # Wired: the detection names the playbook (`playbook:`), so its alerts are sent to SOAR
    # labelled for it; the release playbook's are those of the playbooks that quarantine.
    assert playbook(name).meta["tags"]["detections"] == wired_detections(name)
    assert wired_detections(name), f"no detection feeds {name}"


@pytest.mark.parametrize("name", NAMES)
def test_metadata_lists_the_cef_fields_the_playbook_reads(name: str) -> None:
    pb = playbook(name)
    tags = pb.meta["tags"]
    assert tags["playbook_fields"] == sorted(pb.collected_fields())
    assert tags["evidence_fields"] == sorted(
        (pb.evidence_fields() | pb.filter_fields()) - pb.collected_fields()
    )


def _selects(pb: Playbook, fields: list[str]) -> bool:
    """Whether the playbook's first filter keeps an artifact with these CEF fields."""
    (first,) = [e["targetNode"] for e in pb.edges if e["sourceNode"] == "0"]
    node = pb.nodes[first]
    assert node["type"] == "filter"
    (condition,) = node["data"]["conditions"]
    present = []
    for comparison in condition["comparisons"]:
        assert comparison["op"] == "!="
        assert comparison["value"] == ""
        present.append(comparison["param"].removeprefix("artifact:*.cef.") in fields)
    return any(present) if condition["logic"] == "or" else all(present)


# Results of detections wired to no playbook that a first filter still keeps: the audit playbook
# routes any audit result with a check name (its offline runs below give it a check-level and a
# conflicting client ids result). Only the detections in `tags.detections` send it alerts.
KEPT_UNWIRED = {
    "IoT_Audit_Remediation": {
        "audit_conflicting_client_ids",
        "audit_critical_or_high_check_non_compliant",
    }
}


@pytest.mark.parametrize("name", NAMES)
def test_the_first_filter_keeps_the_alerts_of_the_detections_served(name: str) -> None:
    # The playbooks operate on every label ("*"): the filter alone keeps them off other alerts.
    pb = playbook(name)
    served = set(pb.meta["tags"]["detections"])
    results = detection_results()
    for stem in served:
        for fields in results[stem]:  # every variant
            assert _selects(pb, fields), f"{name} drops the alerts of {stem}: {fields}"
    selected = {
        stem for stem, tables in results.items() if any(_selects(pb, fields) for fields in tables)
    }
    if name in RELEASES:  # run by hand on a quarantine's container
        assert served <= selected
    else:
        wired = {stem for other in NAMES for stem in wired_detections(other)}
        assert not KEPT_UNWIRED.get(name, set()) & wired
        assert selected == served | KEPT_UNWIRED.get(name, set())


# --- the hand-off: the CEF fields a playbook reads, against the detections wired to it -------


@pytest.mark.parametrize("name", NAMES)
def test_every_cef_field_a_playbook_collects_is_output_by_every_detection_wired_to_it(
    name: str,
) -> None:
    # The key fields, collected by name (artifact:*.cef.<field>): what the playbook acts on.
    # A detection that lacked one would hand the playbook an empty value where it needs one.
    collected = playbook(name).collected_fields()
    assert collected
    results = detection_results()
    missing = {
        f"{stem} (search {index})": sorted(collected - set(fields))
        for stem in wired_detections(name)
        for index, fields in enumerate(results[stem])
        if collected - set(fields)
    }
    assert missing == {}


@pytest.mark.parametrize("name", NAMES)
def test_every_other_cef_field_a_playbook_reads_is_output_by_a_detection_wired_to_it(
    name: str,
) -> None:
    # The evidence, read from the whole CEF (artifact:*.cef) by the cef_values helper, and the
    # fields the first filter tests for: present in some alerts only, never in none.
    pb = playbook(name)
    assert None not in pb.evidence_reads(), "cef_values names its field with a string literal"
    output = {
        field for stem in wired_detections(name) for f in detection_results()[stem] for field in f
    }
    assert sorted(pb.evidence_fields() - output) == [], "read from the CEF, sent by none"
    assert sorted(pb.filter_fields() - output) == [], "tested by the filter, sent by none"
    assert not pb.evidence_fields() & pb.collected_fields(), (
        "collected by name and read from the CEF"
    )
    # The whole CEF is collected exactly where evidence is read from it.
    assert pb.collects_whole_cef() == bool(pb.evidence_fields())


@pytest.mark.parametrize("name", NAMES)
def test_every_cef_field_a_playbook_names_is_collected_or_tested_for(name: str) -> None:
    # No artifact:*.cef.<field> datapath escapes the two checks above, whatever its place.
    pb = playbook(name)
    assert pb.named_fields() == pb.collected_fields() | pb.filter_fields()


# --- running the playbooks -----------------------------------------------------------------

FUNCTION = "iot-defender-splunk-responder"
CERT_A = "3f1c2a9b77e0" + "a" * 52
CERT_B = "9d8e7f6a5b4c" + "b" * 52
QUARANTINE_GROUP = "iot-defender-splunk-quarantine"

Answer = Callable[[dict[str, Any]], Invocation]


@pytest.fixture
def run_playbook(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, Soar], Soar]:
    """Runs a playbook with the stand-in installed as phantom.rules (for this test only)."""

    def run(name: str, soar: Soar) -> Soar:
        package = types.ModuleType("phantom")
        rules = soar.module()
        package.rules = rules  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "phantom", package)
        monkeypatch.setitem(sys.modules, "phantom.rules", rules)
        spec = importlib.util.spec_from_file_location(
            f"playbook_{name}", PLAYBOOKS_DIR / f"{name}.py"
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        soar.run(module)
        return soar

    return run


# --- the responder's answers (docs/response.md, section 3) -----------------------------------


def device(
    *,
    groups: tuple[str, ...] = ("cameras",),
    quarantined: bool = False,
    protected: bool = False,
    certificate_status: str = "ACTIVE",
    connected: bool | None = True,
    quarantine: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A thing as describe_thing reports it."""
    return {
        "thing_type": "camera",
        "attributes": {"firmware_version": "2.0.10"},
        "groups": list(groups),
        "quarantined": quarantined,
        "protected": protected,
        "certificates": [{"certificate_id": CERT_A, "status": certificate_status}],
        "connectivity": None if connected is None else {"connected": connected},
        "violations": None,
        "quarantine": quarantine,
    }


def _answer(
    request: dict[str, Any], status: str, message: str, targets: list[dict[str, Any]]
) -> dict[str, Any]:
    counts = {"targets": len(targets), "ok": 0, "noop": 0, "planned": 0, "refused": 0, "error": 0}
    for target in targets:
        counts[target["status"]] += 1
    return {
        "status": status,
        "action": request["action"],
        "request_id": request["request_id"],
        "response_id": "0b7a1f5e-0000-4000-8000-000000000001",
        "message": message,
        "targets": targets,
        "counts": counts,
    }


def described(state: dict[str, Any]) -> Answer:
    def answer(request: dict[str, Any]) -> Invocation:
        thing = request["thing_name"]
        target = {"thing_name": thing, "status": "ok", "before": state, "after": state}
        return answered(_answer(request, "ok", f"described {thing}", [target]))

    return answer


def changed(before: dict[str, Any], after: dict[str, Any], message: str) -> Answer:
    def answer(request: dict[str, Any]) -> Invocation:
        target = {
            "thing_name": request["thing_name"],
            "status": "ok",
            "before": before,
            "after": after,
        }
        return answered(_answer(request, "ok", message, [target]))

    return answer


def refused(message: str) -> Answer:
    def answer(request: dict[str, Any]) -> Invocation:
        return answered(_answer(request, "refused", message, []))

    return answer


def failed(code: str, message: str) -> Answer:
    def answer(request: dict[str, Any]) -> Invocation:
        body = _answer(request, "error", f"AWS IoT call failed: {message}", [])
        body["error"] = {"code": code, "message": message}
        return answered(body)

    return answer


def always(invocation: Invocation) -> Answer:
    return lambda request: invocation


def scripted(answers: dict[tuple[str, ...], Answer]) -> Lambda:
    """The responder: answers each request by (action, target[, "dry_run"]); anything else fails."""

    def invoke(request: dict[str, Any]) -> Invocation:
        # A mitigation by finding ids is keyed by the ids, space-separated.
        keys = ("thing_name", "certificate_id", "finding_ids", "check_name")
        target = next(request[key] for key in keys if key in request)
        target = " ".join(target) if isinstance(target, list) else target
        key = (request["action"], target, *(["dry_run"] if request.get("dry_run") else []))
        assert key in answers, f"unscripted request {request}"
        return answers[key](request)

    return invoke


def quarantined_state(state: dict[str, Any]) -> dict[str, Any]:
    return {
        **state,
        "groups": [*state["groups"], QUARANTINE_GROUP],
        "quarantined": True,
        "certificates": [{"certificate_id": CERT_A, "status": "INACTIVE"}],
        "disconnected": True,
    }


# --- IoT Open Port Response -------------------------------------------------------------------

PORT_CONTAINER = {"id": 4711, "name": "IoT - Risky Port Listening"}
LOBBY = "cam-lobby-2"


def port_alert(artifact_id: int, thing: Any, port: int, service: str, risk: str) -> Artifact:
    """One result of IoT - Risky Port Listening (or a new-port detection) as an artifact."""
    return Artifact(
        artifact_id,
        {
            "firstTime": "1764576000",
            "lastTime": "1764576900",
            "thing": thing,
            "transport": "tcp",
            "port": str(port),
            "interfaces": "eth0",
            "service": service,
            "risk": risk,
            "origin": "device-report",
            "thing_groups": "cameras",
            "thing_type": "camera",
            "firmware_version": "2.0.10",
        },
    )


ADB = port_alert(1, LOBBY, 5555, "adb", "high")
TELNET = port_alert(2, LOBBY, 23, "telnet", "critical")
LOBBY_DESCRIBE = {
    "action": "describe_thing",
    "request_id": "soar-4711-port-describe-b802713f91e9",
    "thing_name": LOBBY,
}


def lobby_quarantine(requested_by: str, ports: str) -> dict[str, Any]:
    return {
        "action": "quarantine_thing",
        "request_id": "soar-4711-port-quarantine-b802713f91e9",
        "requested_by": requested_by,
        "reason": f"IoT - Risky Port Listening (SOAR container 4711): cam-lobby-2: {ports}",
        "thing_name": LOBBY,
        "keep_certificate": False,
        "disconnect": True,
    }


APPROVED_ADB = lobby_quarantine(
    "soar:iot_open_port_response:approved-by:jdoe", "listens on tcp/5555 adb (high)"
)
QUARANTINED_LOBBY = changed(
    device(), quarantined_state(device()), "quarantined cam-lobby-2: added to the quarantine group"
)


def open_port_run(
    run_playbook: Callable[[str, Soar], Soar],
    artifacts: list[Artifact],
    answers: dict[tuple[str, ...], Answer],
    prompt: PromptAnswer | None = None,
) -> Soar:
    prompts = {"approve_quarantine": prompt}
    soar = Soar(PORT_CONTAINER, artifacts, scripted(answers), prompts=prompts)
    return run_playbook("IoT_Open_Port_Response", soar)


PORT_PROMPT = (
    "SOAR container 4711 (IoT - Risky Port Listening) reports new or risky listening ports."
    " Quarantine adds each device below to the quarantine thing group, whose policy denies every"
    " AWS IoT action. For each device, its active certificates are deactivated (one another thing"
    " shares stays active) and its MQTT session is ended.\n\n"
    "| Device | Alert | Groups | Connected | Certificates | Auto-approval |\n"
    "| --- | --- | --- | --- | --- | --- |\n"
    "| cam-lobby-2 | listens on tcp/5555 adb (high) | cameras | yes | 3f1c2a9b77e0 ACTIVE"
    " | no port on the auto-approve list |"
)
PORT_HEADING = "IoT Open Port Response for SOAR container 4711: IoT - Risky Port Listening.\n\n"
BEFORE_AND_AFTER = (
    "- Before: groups cameras; not quarantined; certificates 3f1c2a9b77e0 ACTIVE\n"
    "- After: groups cameras, iot-defender-splunk-quarantine; quarantined;"
    " certificates 3f1c2a9b77e0 INACTIVE; disconnected"
)
LOBBY_IDS = (
    "request soar-4711-port-quarantine-b802713f91e9, response 0b7a1f5e-0000-4000-8000-000000000001"
)


def test_open_port_approved_by_the_analyst_quarantines_in_their_name(run_playbook):
    soar = open_port_run(
        run_playbook,
        [ADB],
        {
            ("describe_thing", LOBBY): described(device()),
            ("quarantine_thing", LOBBY): QUARANTINED_LOBBY,
        },
        PromptAnswer("jdoe", ["Yes"]),
    )
    # Read first, then change: the describe, then the quarantine the analyst approved.
    assert soar.sent == [LOBBY_DESCRIBE, APPROVED_ADB]
    assert [p["function_name"] for a in soar.made("act") for p in a["parameters"]] == [FUNCTION] * 2
    (prompt,) = soar.made("prompt2")
    assert (prompt["role"], prompt["respond_in_mins"], prompt["message"]) == (
        "Administrator",
        60,
        PORT_PROMPT,
    )
    assert soar.notes == [
        (
            "IoT Open Port Response",
            PORT_HEADING + "Approval: approved by jdoe.\n\n"
            "#### cam-lobby-2: quarantined\n"
            "- Alert: listens on tcp/5555 adb (high)\n"
            "- Responder: ok: quarantined cam-lobby-2: added to the quarantine group"
            f" ({LOBBY_IDS})\n" + BEFORE_AND_AFTER,
        )
    ]
    assert soar.comments == ["IoT Open Port Response (approved by jdoe): cam-lobby-2 quarantined."]


@pytest.mark.parametrize(
    ("answer", "approval"),
    [
        (PromptAnswer("jdoe", ["No"]), "declined by jdoe"),
        (None, "no answer before the prompt expired"),
    ],
    ids=["declined", "expired"],
)
def test_open_port_not_approved_changes_nothing(run_playbook, answer, approval):
    soar = open_port_run(
        run_playbook, [ADB], {("describe_thing", LOBBY): described(device())}, answer
    )
    assert soar.sent == [LOBBY_DESCRIBE]
    assert "quarantine_devices" not in soar.trace
    assert soar.notes == [
        (
            "IoT Open Port Response",
            PORT_HEADING + f"Approval: {approval}.\n\n"
            "#### cam-lobby-2: not quarantined\n"
            "- Alert: listens on tcp/5555 adb (high)\n"
            f"- Not quarantined: {approval}\n"
            "- State: groups cameras; not quarantined; certificates 3f1c2a9b77e0 ACTIVE",
        )
    ]
    assert soar.comments == [f"IoT Open Port Response ({approval}): cam-lobby-2 not quarantined."]


def test_open_port_on_the_auto_approve_list_quarantines_without_asking(run_playbook):
    soar = open_port_run(
        run_playbook,
        [TELNET, ADB],
        {
            ("describe_thing", LOBBY): described(device()),
            ("quarantine_thing", LOBBY): QUARANTINED_LOBBY,
        },
    )
    assert soar.made("prompt2") == []
    assert soar.sent == [
        LOBBY_DESCRIBE,
        lobby_quarantine(
            "soar:iot_open_port_response:auto-approved",
            "listens on tcp/23 telnet (critical); listens on tcp/5555 adb (high)",
        ),
    ]
    assert soar.notes == [
        (
            "IoT Open Port Response",
            PORT_HEADING + "Approval: auto-approved: a port on the auto-approve list.\n\n"
            "#### cam-lobby-2: quarantined\n"
            "- Alert: listens on tcp/23 telnet (critical); listens on tcp/5555 adb (high)\n"
            "- Responder: ok: quarantined cam-lobby-2: added to the quarantine group"
            f" ({LOBBY_IDS})\n" + BEFORE_AND_AFTER,
        )
    ]
    assert soar.comments == [
        "IoT Open Port Response (auto-approved: a port on the auto-approve list):"
        " cam-lobby-2 quarantined."
    ]


@pytest.mark.parametrize(
    ("state", "why"),
    [
        (
            device(groups=("cameras", "critical-infra"), protected=True),
            "in a protected thing group",
        ),
        (quarantined_state(device()), "already quarantined"),
    ],
    ids=["protected", "already-quarantined"],
)
def test_open_port_never_acts_on_a_protected_or_quarantined_device(run_playbook, state, why):
    # Telnet is on the auto-approve list: still no quarantine and no prompt.
    soar = open_port_run(run_playbook, [TELNET], {("describe_thing", LOBBY): described(state)})
    assert soar.sent == [LOBBY_DESCRIBE]
    assert soar.made("prompt2") == []
    (note,) = soar.notes
    assert (
        "#### cam-lobby-2: not quarantined\n- Alert: listens on tcp/23 telnet (critical)\n"
        f"- Not quarantined: {why}\n" in note[1]
    )
    assert soar.comments == [
        "IoT Open Port Response (not asked: no device to quarantine):"
        f" cam-lobby-2 not quarantined ({why})."
    ]


@pytest.mark.parametrize(
    ("answer", "said", "ids"),
    [
        (
            refused("thing cam-lobby-2 is in protected thing group critical-infra"),
            "refused: thing cam-lobby-2 is in protected thing group critical-infra",
            LOBBY_IDS,
        ),
        (
            failed("ThrottlingException", "Rate exceeded"),
            "error: AWS IoT call failed: Rate exceeded [ThrottlingException]",
            LOBBY_IDS,
        ),
        (
            always(function_error("Task timed out after 30.00 seconds")),
            "the invoke lambda action failed: Task timed out after 30.00 seconds",
            "request soar-4711-port-quarantine-b802713f91e9",
        ),
        (
            always(invoke_failed("AccessDeniedException")),
            "the invoke lambda action failed: boto3 call to Lambda failed. AccessDeniedException",
            "request soar-4711-port-quarantine-b802713f91e9",
        ),
        (
            changed(device(), device(), "quarantined cam-lobby-2"),
            "ok: quarantined cam-lobby-2 (but its after state is not quarantined)",
            LOBBY_IDS,
        ),
    ],
    ids=["refused", "error", "function-error", "invoke-failed", "ok-but-not-quarantined"],
)
def test_open_port_reports_a_failed_quarantine_once_and_never_as_done(
    run_playbook, answer, said, ids
):
    soar = open_port_run(
        run_playbook,
        [ADB],
        {("describe_thing", LOBBY): described(device()), ("quarantine_thing", LOBBY): answer},
        PromptAnswer("jdoe", ["Yes"]),
    )
    assert soar.sent == [LOBBY_DESCRIBE, APPROVED_ADB]  # no retry
    (note,) = soar.notes
    assert "#### cam-lobby-2: not quarantined\n- Alert: listens on tcp/5555 adb (high)\n" in note[1]
    assert f"- Responder: {said} ({ids})" in note[1]
    assert soar.comments == [
        f"IoT Open Port Response (approved by jdoe): cam-lobby-2 not quarantined ({said})."
    ]


def test_open_port_skips_a_device_it_cannot_read(run_playbook):
    soar = open_port_run(
        run_playbook,
        [TELNET],
        {
            ("describe_thing", LOBBY): failed(
                "ResourceNotFoundException", "cam-lobby-2 does not exist"
            )
        },
    )
    assert soar.sent == [LOBBY_DESCRIBE]
    assert soar.comments == [
        "IoT Open Port Response (not asked: no device to quarantine): cam-lobby-2 not quarantined"
        " (not read from AWS IoT: AWS IoT call failed: cam-lobby-2 does not exist)."
    ]


YARD = ("cam-yard-1", "cam-yard-2", "cam-yard-3")
YARD_IDS = {
    "cam-yard-1": "ba4605ec649c",
    "cam-yard-2": "6e425ef8def8",
    "cam-yard-3": "74e473b27f7c",
}
# IoT - New Listening Port On Several Peer Devices: one result names every device (multivalue).
PEER_ALERT = Artifact(
    10,
    {
        "peer_segment": "camera/2.0.10",
        "transport": "tcp",
        "port": "23",
        "devices": "3",
        "thing": "\n".join(YARD),
        "interfaces": "eth0",
        "service": "telnet",
        "risk": "critical",
        "thing_groups": "cameras",
        "thing_type": "camera",
        "firmware_version": "2.0.10",
    },
)
# IoT - Listening Port Count Changed: a count, no port.
COUNT_ALERT = Artifact(
    11,
    {
        "thing": "cam-yard-1",
        "transport": "tcp",
        "current_count": "7",
        "baseline_max": "3",
        "change": "more ports than in the last 23 hours",
        "origin": "device-report",
    },
)


def yard_answers() -> dict[tuple[str, ...], Answer]:
    answers: dict[tuple[str, ...], Answer] = {
        ("describe_thing", thing): described(device()) for thing in YARD
    }
    answers["describe_thing", "cam-yard-2"] = described(
        device(groups=("cameras", "critical-infra"), protected=True)
    )
    for thing in ("cam-yard-1", "cam-yard-3"):
        answers["quarantine_thing", thing] = changed(
            device(), quarantined_state(device()), f"quarantined {thing}"
        )
    return answers


def yard_quarantine(thing: str, requested_by: str, findings: str) -> dict[str, Any]:
    return {
        "action": "quarantine_thing",
        "request_id": f"soar-4711-port-quarantine-{YARD_IDS[thing]}",
        "requested_by": requested_by,
        "reason": f"IoT - Risky Port Listening (SOAR container 4711): {thing}: {findings}",
        "thing_name": thing,
        "keep_certificate": False,
        "disconnect": True,
    }


def yard_describe(thing: str) -> dict[str, Any]:
    return {
        "action": "describe_thing",
        "request_id": f"soar-4711-port-describe-{YARD_IDS[thing]}",
        "thing_name": thing,
    }


def test_open_port_acts_per_device_of_a_fleet_alert_and_skips_the_protected(run_playbook):
    soar = open_port_run(run_playbook, [PEER_ALERT, COUNT_ALERT], yard_answers())
    auto = "soar:iot_open_port_response:auto-approved"
    assert soar.sent == [
        *(yard_describe(thing) for thing in YARD),
        yard_quarantine(
            "cam-yard-1",
            auto,
            "listens on tcp/23 telnet (critical);"
            " tcp listening port count: more ports than in the last 23 hours",
        ),
        yard_quarantine("cam-yard-3", auto, "listens on tcp/23 telnet (critical)"),
    ]
    assert soar.made("prompt2") == []
    assert soar.comments == [
        "IoT Open Port Response (auto-approved: a port on the auto-approve list):"
        " cam-yard-1 quarantined; cam-yard-2 not quarantined (in a protected thing group);"
        " cam-yard-3 quarantined."
    ]


def test_open_port_asks_for_every_device_when_one_needs_asking(run_playbook):
    alerts = [
        port_alert(12, "cam-yard-1", 5555, "adb", "high"),
        port_alert(13, "cam-yard-3", 23, "telnet", "critical"),
        port_alert(14, "bad name!", 23, "telnet", "critical"),
    ]
    soar = open_port_run(run_playbook, alerts, yard_answers(), PromptAnswer("jdoe", ["Yes"]))
    approved = "soar:iot_open_port_response:approved-by:jdoe"
    assert soar.sent == [
        yard_describe("cam-yard-1"),
        yard_describe("cam-yard-3"),
        yard_quarantine("cam-yard-1", approved, "listens on tcp/5555 adb (high)"),
        yard_quarantine("cam-yard-3", approved, "listens on tcp/23 telnet (critical)"),
    ]
    (prompt,) = soar.made("prompt2")
    assert prompt["message"].endswith(
        "| cam-yard-1 | listens on tcp/5555 adb (high) | cameras | yes | 3f1c2a9b77e0 ACTIVE"
        " | no port on the auto-approve list |\n"
        "| cam-yard-3 | listens on tcp/23 telnet (critical) | cameras | yes | 3f1c2a9b77e0 ACTIVE"
        " | port 23 on the auto-approve list |"
    )
    (note,) = soar.notes
    assert "\n\nIgnored, not thing names: bad name!.\n\n" in note[1]


def test_open_port_never_auto_approves_a_port_count(run_playbook):
    soar = open_port_run(run_playbook, [COUNT_ALERT], yard_answers(), PromptAnswer("jdoe", ["No"]))
    assert soar.sent == [yard_describe("cam-yard-1")]
    assert len(soar.made("prompt2")) == 1
    assert soar.comments == [
        "IoT Open Port Response (declined by jdoe): cam-yard-1 not quarantined."
    ]


def test_open_port_leaves_a_fleet_to_the_fleet_actions(run_playbook):
    things = [f"cam-{n:02d}" for n in range(11)]
    alert = Artifact(20, {**PEER_ALERT.cef, "thing": things, "devices": "11"})
    soar = open_port_run(run_playbook, [alert], {})
    assert soar.sent == []
    assert soar.notes == []
    assert soar.comments == [
        "IoT Open Port Response: 11 devices in one container, more than the 10 this playbook"
        " acts on; nothing was done. Quarantine a fleet with the responder's quarantine_group or"
        " quarantine_version."
    ]


def test_open_port_says_so_when_no_artifact_names_a_thing(run_playbook):
    soar = open_port_run(run_playbook, [port_alert(21, "cam lobby", 23, "telnet", "critical")], {})
    assert soar.sent == []
    assert soar.comments == [
        "IoT Open Port Response: no artifact names a valid thing (ignored: cam lobby);"
        " nothing was done."
    ]


def test_open_port_request_ids_are_the_contracts_idempotency_keys(run_playbook):
    first = open_port_run(run_playbook, [PEER_ALERT], yard_answers())
    again = open_port_run(run_playbook, [PEER_ALERT], yard_answers())
    ids = [request["request_id"] for request in first.sent]
    # A re-run of a step on the same container is the same request: the responder replays it.
    assert ids == [request["request_id"] for request in again.sent]
    assert len(set(ids)) == len(ids) == 5
    assert all(re.fullmatch(r"[A-Za-z0-9-]{1,64}", i) for i in ids)
    other = Soar({**PORT_CONTAINER, "id": 4712}, [PEER_ALERT], scripted(yard_answers()))
    assert not set(ids) & {
        r["request_id"] for r in run_playbook("IoT_Open_Port_Response", other).sent
    }


# An alert none of the quarantine or audit playbooks serves: IoT - Connection Flapping.
FLAPPING = Artifact(
    30,
    {
        "clientId": LOBBY,
        "thing": LOBBY,
        "current_max": "40",
        "baseline_avg": "2",
        "src_ips": "198.51.100.7",
        "certificate_ids": CERT_A,
        "thing_groups": "cameras",
    },
)


@pytest.mark.parametrize(
    "name", ["IoT_Open_Port_Response", "IoT_Exfiltration_Containment", "IoT_Audit_Remediation"]
)
def test_playbooks_leave_the_alerts_they_do_not_serve_alone(run_playbook, name):
    soar = run_playbook(name, Soar(PORT_CONTAINER, [FLAPPING], scripted({})))
    assert [call.api for call in soar.calls] == ["condition"]


# --- IoT Exfiltration Containment -------------------------------------------------------------

EXFIL_CONTAINER = {"id": 5150, "name": "IoT - Outbound Spike To New Destination"}
PUMP = "pump-0021"
PUMP_STATE = device(groups=("pumps",))
# The same device in the results of four outbound-volume and destination detections.
EXFIL_ALERTS = [
    Artifact(  # IoT - Outbound Volume Spike Vs Device Baseline
        1,
        {
            "thing": PUMP,
            "origin": "device-report",
            "spiking_metrics": "aws:all-bytes-out\naws:all-packets-out",
            "spikes": "aws:all-bytes-out 48000000 (baseline mean 200000, bound 600000)\n"
            "aws:all-packets-out 36000 (baseline mean 150, bound 400)",
            "baseline_samples": "23",
            "thing_groups": "pumps",
            "peer_segment": "pump/1.4.2",
        },
    ),
    Artifact(  # IoT - Outbound Spike To New Destination
        2,
        {
            "thing": PUMP,
            "first_new_destination": "1764576000",
            "new_destinations": "203.0.113.50",
            "dest_ports": "8443",
            "spiking_metrics": "aws:all-bytes-out",
            "spikes": "aws:all-bytes-out 48000000 (baseline mean 200000, bound 600000)",
        },
    ),
    Artifact(  # IoT - Destination Outside Allowed CIDRs
        3,
        {
            "thing": PUMP,
            "dest_ip": "203.0.113.50",
            "dest_ports": "8443",
            "destination": "203.0.113.50/32",
            "connections": "12",
        },
    ),
    Artifact(  # IoT - Daily Outbound Volume Above Device Baseline
        4,
        {
            "thing": PUMP,
            "rising_metrics": "aws:all-bytes-out",
            "daily_volumes": "aws:all-bytes-out 900000000 in 24 hours (7-day mean 20000000,"
            " bound 60000000)",
            "baseline_days": "7",
        },
    ),
    Artifact(  # IoT - Outbound Volume Spike Vs Device Baseline (MLTK), from a Detect export
        5,
        {"thing": PUMP, "spiking_metrics": "aws:all-bytes-out", "max_volume": "52000000"},
    ),
]
PUMP_FINDINGS = (
    "outbound spike aws:all-bytes-out 48000000 (baseline mean 200000, bound 600000);"
    " outbound spike aws:all-packets-out 36000 (baseline mean 150, bound 400);"
    " baseline of 23 datapoints;"
    " new destinations 203.0.113.50 ports 8443 since 2025-12-01 08:00:00Z;"
    " destination outside the allowed CIDRs 203.0.113.50 ports 8443, 12 connections;"
    " daily outbound volume aws:all-bytes-out 900000000 in 24 hours (7-day mean 20000000,"
    " bound 60000000); baseline of 7 days;"
    " outbound spike in aws:all-bytes-out up to 52000000"
)
PUMP_DESCRIBE = {
    "action": "describe_thing",
    "request_id": "soar-5150-exfil-describe-7a3efcd90311",
    "thing_name": PUMP,
}
PUMP_QUARANTINE = {
    "action": "quarantine_thing",
    "request_id": "soar-5150-exfil-quarantine-7a3efcd90311",
    "requested_by": "soar:iot_exfiltration_containment:approved-by:asmith",
    "reason": "IoT - Outbound Spike To New Destination (SOAR container 5150): pump-0021: "
    + PUMP_FINDINGS,
    "thing_name": PUMP,
    "keep_certificate": False,
    "disconnect": True,
}


def exfil_run(
    run_playbook: Callable[[str, Soar], Soar],
    answers: dict[tuple[str, ...], Answer],
    prompt: PromptAnswer | None,
    state: dict[str, Any] = PUMP_STATE,
) -> Soar:
    answers = {("describe_thing", PUMP): described(state), **answers}
    soar = Soar(
        EXFIL_CONTAINER, EXFIL_ALERTS, scripted(answers), prompts={"approve_quarantine": prompt}
    )
    return run_playbook("IoT_Exfiltration_Containment", soar)


def test_exfiltration_gathers_volumes_and_destinations_and_quarantines_once_approved(run_playbook):
    quarantine = changed(
        PUMP_STATE,
        quarantined_state(PUMP_STATE),
        "quarantined pump-0021: added to the quarantine group",
    )
    soar = exfil_run(
        run_playbook, {("quarantine_thing", PUMP): quarantine}, PromptAnswer("asmith", ["Yes"])
    )
    assert soar.sent == [PUMP_DESCRIBE, PUMP_QUARANTINE]
    (prompt,) = soar.made("prompt2")
    assert prompt["message"] == (
        "SOAR container 5150 (IoT - Outbound Spike To New Destination) reports devices sending"
        " unusual volumes or to destinations outside their allowed networks. Quarantine adds each"
        " device below to the quarantine thing group, whose policy denies every AWS IoT action."
        " For each device, its active certificates are deactivated (one another thing shares"
        " stays active) and its MQTT session is ended.\n\n"
        "| Device | Alert | Groups | Connected | Certificates |\n| --- | --- | --- | --- | --- |\n"
        f"| pump-0021 | {PUMP_FINDINGS} | pumps | yes | 3f1c2a9b77e0 ACTIVE |"
    )
    assert soar.notes == [
        (
            "IoT Exfiltration Containment",
            "IoT Exfiltration Containment for SOAR container 5150:"
            " IoT - Outbound Spike To New Destination.\n\n"
            "Approval: approved by asmith.\n\n"
            "#### pump-0021: quarantined\n"
            f"- Alert: {PUMP_FINDINGS}\n"
            "- Responder: ok: quarantined pump-0021: added to the quarantine group"
            " (request soar-5150-exfil-quarantine-7a3efcd90311,"
            " response 0b7a1f5e-0000-4000-8000-000000000001)\n"
            "- Before: groups pumps; not quarantined; certificates 3f1c2a9b77e0 ACTIVE\n"
            "- After: groups pumps, iot-defender-splunk-quarantine; quarantined;"
            " certificates 3f1c2a9b77e0 INACTIVE; disconnected",
        )
    ]
    assert soar.comments == [
        "IoT Exfiltration Containment (approved by asmith): pump-0021 quarantined."
    ]


def test_exfiltration_declined_changes_nothing(run_playbook):
    soar = exfil_run(run_playbook, {}, PromptAnswer("asmith", ["No"]))
    assert soar.sent == [PUMP_DESCRIBE]
    assert soar.comments == [
        "IoT Exfiltration Containment (declined by asmith): pump-0021 not quarantined."
    ]


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (
            refused("quarantine_thing takes no 'keep_certificates'"),
            "refused: quarantine_thing takes no 'keep_certificates'",
        ),
        (
            failed("InternalFailureException", "Internal failure"),
            "error: AWS IoT call failed: Internal failure [InternalFailureException]",
        ),
    ],
    ids=["refused", "error"],
)
def test_exfiltration_reports_a_refused_or_failed_quarantine(run_playbook, answer, said):
    soar = exfil_run(
        run_playbook, {("quarantine_thing", PUMP): answer}, PromptAnswer("asmith", ["Yes"])
    )
    assert soar.sent == [PUMP_DESCRIBE, PUMP_QUARANTINE]
    assert soar.comments == [
        f"IoT Exfiltration Containment (approved by asmith): pump-0021 not quarantined ({said})."
    ]


def test_exfiltration_skips_a_quarantined_device_without_asking(run_playbook):
    soar = exfil_run(run_playbook, {}, None, state=quarantined_state(PUMP_STATE))
    assert soar.sent == [PUMP_DESCRIBE]
    assert soar.made("prompt2") == []
    assert soar.comments == [
        "IoT Exfiltration Containment (not asked: no device to quarantine):"
        " pump-0021 not quarantined (already quarantined)."
    ]


# --- IoT Audit Remediation --------------------------------------------------------------------

AUDIT_CONTAINER = {"id": 6200, "name": "IoT - Audit New Non-Compliant Finding"}
TASK = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
OTHER_TASK = "0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f"
SHARED = "DEVICE_CERTIFICATE_SHARED_CHECK"
LOGGING = "LOGGING_DISABLED_CHECK"
POLICY = "IOT_POLICY_OVERLY_PERMISSIVE_CHECK"
# The findingId of the audit findings (the detections' finding_id).
LOGGING_ID = "0f6a3c1e-9b2d-4e7f-8a15-6c4d2b7e9f01"
POLICY_ID = "7d2e9b40-3c1a-4f58-b6e2-1a9c8d7f5e33"
SENSOR_POLICY_ID = "3b8f1d6a-5e2c-4a97-9d40-8e7b6c5a4f12"


def finding(artifact_id: int, check: str, **cef: str) -> Artifact:
    """One result of an audit detection as an artifact."""
    return Artifact(
        artifact_id, {"finding_time": "1764576000", "check_name": check, "task_id": TASK, **cef}
    )


SHARED_FINDING = finding(
    1,
    SHARED,
    resource_id=CERT_B,
    certificate_ids=CERT_B,
    clients_sharing="2",
    thing="gw-01\ngw-02",
    reason="Certificate shared by 2 clients",
    finding_id="5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d",
)
LOGGING_FINDING = finding(
    2,
    LOGGING,
    resource_id="123456789012",
    reason="IoT logging is disabled",
    finding_id=LOGGING_ID,
)


def policy_finding(artifact_id: int, policy: str, finding_id: str, task: str = TASK) -> Artifact:
    return finding(
        artifact_id,
        POLICY,
        task_id=task,
        resource_type="IOT_POLICY",
        resource_id=policy,
        reason_code="ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS",
        reason="Policy allows broad access to IoT data plane actions",
        finding_id=finding_id,
    )


POLICY_FINDING = policy_finding(3, "legacy-device-policy:4", POLICY_ID)
CONFLICT_FINDING = finding(
    4,
    "CONFLICTING_CLIENT_IDS_CHECK",
    resource_id=LOBBY,
    reason_code="DUPLICATE_CLIENT_ID_ACROSS_CONNECTIONS",
    thing=LOBBY,
)
AUDIT_FINDINGS = [SHARED_FINDING, LOGGING_FINDING, POLICY_FINDING, CONFLICT_FINDING]
AUDIT_REASON = "IoT - Audit New Non-Compliant Finding (SOAR container 6200): "
SHARED_REASON = (
    f"{AUDIT_REASON}deactivate_certificate for {SHARED} on {CERT_B}:"
    " Certificate shared by 2 clients"
)
POLICY_SEEN = (
    f"{POLICY} on IOT_POLICY legacy-device-policy:4:"
    f" Policy allows broad access to IoT data plane actions (finding {POLICY_ID})"
)
LOGGING_SEEN = f"{LOGGING} on 123456789012: IoT logging is disabled (finding {LOGGING_ID})"
POLICY_REASON = f"{AUDIT_REASON}remediate_audit_finding for {POLICY_SEEN}"
LOGGING_REASON = f"{AUDIT_REASON}remediate_audit_finding for {LOGGING_SEEN}"
# Keyed by the certificate id, the finding ids, or the audit task and check: the same in the
# plan and the change.
SHARED_KEY, POLICY_KEY, LOGGING_KEY = "6720ba7be8d2", "221c5aeaadb5", "f22da0644611"
POLICY_TASK_KEY, LOGGING_TASK_KEY = "3626f478d266", "b1b92b1964f2"
MITIGATION = "remediate_audit_finding"


def audit_request(step: str, key: str, action: str, reason: str, **keys: Any) -> dict[str, Any]:
    plan = step == "plan"
    return {
        "action": action,
        "request_id": f"soar-6200-audit-{step}-{key}",
        "requested_by": "soar:iot_audit_remediation:" + ("plan" if plan else "approved-by:jdoe"),
        "reason": reason,
        **({"dry_run": True} if plan else {}),
        **keys,
    }


def audit_requests(step: str) -> list[dict[str, Any]]:
    return [
        audit_request(
            step, SHARED_KEY, "deactivate_certificate", SHARED_REASON, certificate_id=CERT_B
        ),
        audit_request(step, LOGGING_KEY, MITIGATION, LOGGING_REASON, finding_ids=[LOGGING_ID]),
        audit_request(step, POLICY_KEY, MITIGATION, POLICY_REASON, finding_ids=[POLICY_ID]),
    ]


def audit_answer(
    status: str, message: str, targets: tuple[dict[str, Any], ...] = (), **extra: Any
) -> Answer:
    def answer(request: dict[str, Any]) -> Invocation:
        return answered({**_answer(request, status, message, list(targets)), **extra})

    return answer


def certificate(status: str, before: str, after: str) -> dict[str, Any]:
    return {
        "certificate_id": CERT_B,
        "status": status,
        "before": {"status": before},
        "after": {"status": after},
    }


def mitigation_started(finding_ids: list[str], task: str) -> dict[str, Any]:
    """A target of the responder's answer once it started a mitigation task (the real shape:
    the task id is in the target's ``after``)."""
    message = "started audit mitigation actions task"
    return {
        "finding_ids": finding_ids,
        "status": "ok",
        "message": message,
        "after": {"task_id": task},
    }


def audit_answers() -> dict[tuple[str, ...], Answer]:
    return {
        ("deactivate_certificate", CERT_B, "dry_run"): audit_answer(
            "planned",
            f"would deactivate certificate {CERT_B}",
            (certificate("planned", "ACTIVE", "INACTIVE"),),
        ),
        (MITIGATION, POLICY_ID, "dry_run"): audit_answer(
            "planned", f"would start a mitigation actions task for {POLICY}"
        ),
        (MITIGATION, LOGGING_ID, "dry_run"): audit_answer(
            "planned", f"would start a mitigation actions task for {LOGGING}"
        ),
        ("deactivate_certificate", CERT_B): audit_answer(
            "ok", f"deactivated certificate {CERT_B}", (certificate("ok", "ACTIVE", "INACTIVE"),)
        ),
        (MITIGATION, POLICY_ID): audit_answer(
            "ok",
            "started audit mitigation actions task",
            (mitigation_started([POLICY_ID], "soar-6200-policy"),),
        ),
        (MITIGATION, LOGGING_ID): audit_answer(
            "ok",
            "started audit mitigation actions task",
            (mitigation_started([LOGGING_ID], "soar-6200-logging"),),
        ),
    }


def mitigated(request: dict[str, Any]) -> Invocation:
    """The responder's remediate_audit_finding answer: the plan of its mitigation task."""
    task = f"iot-defender-{request['request_id']}"
    key = (
        {"finding_ids": request["finding_ids"]}
        if "finding_ids" in request
        else {"audit_task_id": request["audit_task_id"], "check_name": request["check_name"]}
    )
    status, message = (
        ("planned", f"would have started mitigation task {task}")
        if request.get("dry_run")
        else ("ok", f"started mitigation task {task}")
    )
    after = {"task_id": task, "actions": {POLICY: ["iot-defender-splunk-policy"]}}
    target = {**key, "status": status, "message": message, "after": after}
    return answered(_answer(request, status, message, [target]))


def mitigations(*targets: str) -> dict[tuple[str, ...], Answer]:
    """The responder planning and then starting a mitigation task for each target (its finding
    ids, space-separated, or its check)."""
    return {
        (MITIGATION, target, *dry_run): mitigated
        for target in targets
        for dry_run in ((), ("dry_run",))
    }


def audit_run(
    run_playbook: Callable[[str, Soar], Soar],
    findings: list[Artifact],
    answers: dict[tuple[str, ...], Answer],
    prompt: PromptAnswer | None,
) -> Soar:
    soar = Soar(
        AUDIT_CONTAINER, findings, scripted(answers), prompts={"approve_remediation": prompt}
    )
    return run_playbook("IoT_Audit_Remediation", soar)


def test_audit_routes_each_check_plans_by_dry_run_and_acts_once_approved(run_playbook):
    soar = audit_run(run_playbook, AUDIT_FINDINGS, audit_answers(), PromptAnswer("jdoe", ["Yes"]))
    # Shared certificate -> deactivate_certificate; logging and policy -> mitigation of the
    # findings by their finding ids; conflicting client ids -> an analyst. Each change is planned
    # by a dry run first.
    assert soar.requests("plan_remediation") == audit_requests("plan")
    assert soar.requests("remediate_findings") == audit_requests("remediate")
    (prompt,) = soar.made("prompt2")
    assert "A mitigation by finding id covers only the findings it lists" in prompt["message"]
    assert prompt["message"].endswith(
        "| Action | Target | Findings | The responder plans |\n| --- | --- | --- | --- |\n"
        f"| deactivate_certificate | certificate {CERT_B} | {SHARED} on {CERT_B}:"
        " Certificate shared by"
        f" 2 clients | would deactivate certificate {CERT_B} |\n"
        f"| remediate_audit_finding | {LOGGING} finding {LOGGING_ID} | {LOGGING_SEEN}"
        f" | would start a mitigation actions task for {LOGGING} |\n"
        f"| remediate_audit_finding | {POLICY} finding {POLICY_ID} | {POLICY_SEEN}"
        f" | would start a mitigation actions task for {POLICY} |"
    )
    response = "response 0b7a1f5e-0000-4000-8000-000000000001"
    assert soar.notes == [
        (
            "IoT Audit Remediation",
            "IoT Audit Remediation for SOAR container 6200:"
            " IoT - Audit New Non-Compliant Finding.\n\n"
            "Approval: approved by jdoe.\n\n"
            f"#### certificate {CERT_B}: deactivated\n"
            f"- Findings: {SHARED} on {CERT_B}: Certificate shared by 2 clients\n"
            f"- Responder: ok: deactivated certificate {CERT_B}"
            f" (request soar-6200-audit-remediate-{SHARED_KEY}, {response})\n"
            "- Before: status ACTIVE\n"
            "- After: status INACTIVE\n\n"
            f"#### {LOGGING} finding {LOGGING_ID}: mitigation started\n"
            f"- Findings: {LOGGING_SEEN}\n"
            "- Responder: ok: started audit mitigation actions task"
            " (mitigation task soar-6200-logging)"
            f" (request soar-6200-audit-remediate-{LOGGING_KEY}, {response})\n"
            "- After: task_id soar-6200-logging\n\n"
            f"#### {POLICY} finding {POLICY_ID}: mitigation started\n"
            f"- Findings: {POLICY_SEEN}\n"
            "- Responder: ok: started audit mitigation actions task"
            " (mitigation task soar-6200-policy)"
            f" (request soar-6200-audit-remediate-{POLICY_KEY}, {response})\n"
            "- After: task_id soar-6200-policy\n\n"
            "#### Left for an analyst\n"
            f"- CONFLICTING_CLIENT_IDS_CHECK on {LOBBY}: no automated remediation for this check",
        )
    ]
    assert soar.comments == [
        f"IoT Audit Remediation (approved by jdoe): certificate {CERT_B} deactivated;"
        f" {LOGGING} finding {LOGGING_ID} mitigation started;"
        f" {POLICY} finding {POLICY_ID} mitigation started; 1 finding(s) left for an analyst."
    ]


def test_audit_declined_only_plans(run_playbook):
    soar = audit_run(run_playbook, AUDIT_FINDINGS, audit_answers(), PromptAnswer("jdoe", ["No"]))
    assert soar.sent == audit_requests("plan")
    assert soar.comments == [
        f"IoT Audit Remediation (declined by jdoe): certificate {CERT_B} not deactivated;"
        f" {LOGGING} finding {LOGGING_ID} not mitigated;"
        f" {POLICY} finding {POLICY_ID} not mitigated;"
        " 1 finding(s) left for an analyst."
    ]


def test_audit_asks_only_for_what_the_dry_run_planned(run_playbook):
    answers = audit_answers()
    answers["deactivate_certificate", CERT_B, "dry_run"] = audit_answer(
        "noop",
        f"certificate {CERT_B} is already INACTIVE",
        (certificate("noop", "INACTIVE", "INACTIVE"),),
    )
    answers[MITIGATION, LOGGING_ID, "dry_run"] = refused(
        f"no mitigation action for {LOGGING} in this stack"
    )
    soar = audit_run(run_playbook, AUDIT_FINDINGS, answers, PromptAnswer("jdoe", ["Yes"]))
    assert soar.requests("remediate_findings") == [audit_requests("remediate")[2]]
    (prompt,) = soar.made("prompt2")
    assert CERT_B not in prompt["message"]
    assert LOGGING not in prompt["message"]
    assert soar.comments == [
        f"IoT Audit Remediation (approved by jdoe): certificate {CERT_B} already inactive"
        f" (nothing to do: certificate {CERT_B} is already INACTIVE);"
        f" {LOGGING} finding {LOGGING_ID} not mitigated"
        f" (the dry run was refused: no mitigation action for {LOGGING} in this stack);"
        f" {POLICY} finding {POLICY_ID} mitigation started;"
        " 1 finding(s) left for an analyst."
    ]


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (
            refused("certificate is attached to a protected thing"),
            "refused: certificate is attached to a protected thing",
        ),
        (
            failed("ThrottlingException", "Rate exceeded"),
            "error: AWS IoT call failed: Rate exceeded [ThrottlingException]",
        ),
    ],
    ids=["refused", "error"],
)
def test_audit_reports_a_refused_or_failed_change(run_playbook, answer, said):
    answers = audit_answers()
    answers["deactivate_certificate", CERT_B] = answer
    soar = audit_run(run_playbook, [SHARED_FINDING], answers, PromptAnswer("jdoe", ["Yes"]))
    assert soar.sent == audit_requests("plan")[:1] + audit_requests("remediate")[:1]
    assert soar.comments == [
        f"IoT Audit Remediation (approved by jdoe): certificate {CERT_B} not deactivated ({said})."
    ]


SENSOR_POLICY_SEEN = (
    f"{POLICY} on IOT_POLICY sensor-policy:2:"
    f" Policy allows broad access to IoT data plane actions (finding {SENSOR_POLICY_ID})"
)


def test_audit_remediates_the_findings_of_a_check_together_by_their_ids(run_playbook):
    findings = [
        POLICY_FINDING,
        policy_finding(5, "sensor-policy:2", SENSOR_POLICY_ID),
        # The same finding again (another audit detection sent it too): remediated once.
        policy_finding(6, "legacy-device-policy:4", POLICY_ID),
    ]
    ids = f"{POLICY_ID} {SENSOR_POLICY_ID}"
    soar = audit_run(run_playbook, findings, mitigations(ids), PromptAnswer("jdoe", ["Yes"]))
    # One request for the two findings of the check, in the order the alerts came.
    reason = f"{AUDIT_REASON}remediate_audit_finding for {POLICY_SEEN}; {SENSOR_POLICY_SEEN}"
    key, both = "4df51187bd81", [POLICY_ID, SENSOR_POLICY_ID]
    assert soar.requests("plan_remediation") == [
        audit_request("plan", key, MITIGATION, reason, finding_ids=both)
    ]
    assert soar.requests("remediate_findings") == [
        audit_request("remediate", key, MITIGATION, reason, finding_ids=both)
    ]
    target = f"{POLICY} findings {POLICY_ID}, {SENSOR_POLICY_ID}"
    (prompt,) = soar.made("prompt2")
    assert prompt["message"].endswith(
        f"| remediate_audit_finding | {target} | {POLICY_SEEN}; {SENSOR_POLICY_SEEN}"
        f" | would have started mitigation task iot-defender-soar-6200-audit-plan-{key} |"
    )
    task = f"iot-defender-soar-6200-audit-remediate-{key}"
    (note,) = soar.notes
    assert note[1].endswith(
        f"#### {target}: mitigation started\n"
        f"- Findings: {POLICY_SEEN}; {SENSOR_POLICY_SEEN}\n"
        f"- Responder: ok: started mitigation task {task} (request"
        f" soar-6200-audit-remediate-{key}, response 0b7a1f5e-0000-4000-8000-000000000001)\n"
        f"- After: task_id {task}"
    )
    assert soar.comments == [
        f"IoT Audit Remediation (approved by jdoe): {target} mitigation started."
    ]


def test_audit_keeps_the_findings_of_each_audit_task_apart(run_playbook):
    findings = [POLICY_FINDING, policy_finding(5, "sensor-policy:2", SENSOR_POLICY_ID, OTHER_TASK)]
    answers = mitigations(POLICY_ID, SENSOR_POLICY_ID)
    soar = audit_run(run_playbook, findings, answers, PromptAnswer("jdoe", ["Yes"]))
    assert [r["finding_ids"] for r in soar.requests("remediate_findings")] == [
        [SENSOR_POLICY_ID],
        [POLICY_ID],
    ]


def test_audit_splits_more_finding_ids_than_the_responder_takes(run_playbook):
    ids = [f"finding-{n:02d}" for n in range(MAX_FINDINGS + 2, 0, -1)]
    findings = [policy_finding(n, f"policy-{n}", i) for n, i in enumerate(ids, start=1)]
    first, rest = ids[:MAX_FINDINGS], ids[MAX_FINDINGS:]
    answers = mitigations(" ".join(first), " ".join(rest))
    soar = audit_run(run_playbook, findings, answers, PromptAnswer("jdoe", ["Yes"]))
    # The responder's limit per request, in the order the alerts came; keyed by their ids.
    plans = soar.requests("plan_remediation")
    assert [(r["request_id"], r["finding_ids"]) for r in plans] == [
        ("soar-6200-audit-plan-9c642eb5b45d", rest),
        ("soar-6200-audit-plan-fdf4a087365d", first),
    ]
    assert [r["finding_ids"] for r in soar.requests("remediate_findings")] == [rest, first]
    assert soar.comments == [
        "IoT Audit Remediation (approved by jdoe):"
        f" {POLICY} findings {', '.join(rest)} mitigation started;"
        f" {POLICY} findings {', '.join(first)} mitigation started."
    ]


LOGGING_BY_TASK = f"every {LOGGING} finding in audit task {TASK}"


@pytest.mark.parametrize("finding_id", [None, "", "x y;|"], ids=["absent", "empty", "invalid"])
def test_audit_falls_back_to_every_finding_of_the_check_without_a_finding_id(
    run_playbook, finding_id
):
    cef = {} if finding_id is None else {"finding_id": finding_id}
    summary = finding(
        2, LOGGING, resource_id="123456789012", reason="IoT logging is disabled", **cef
    )
    soar = audit_run(run_playbook, [summary], mitigations(LOGGING), PromptAnswer("jdoe", ["Yes"]))
    seen = f"{LOGGING} on 123456789012: IoT logging is disabled"
    reason = f"{AUDIT_REASON}remediate_audit_finding for {seen}"
    task = {"audit_task_id": TASK, "check_name": LOGGING}
    assert soar.requests("plan_remediation") == [
        audit_request("plan", LOGGING_TASK_KEY, MITIGATION, reason, **task)
    ]
    assert soar.requests("remediate_findings") == [
        audit_request("remediate", LOGGING_TASK_KEY, MITIGATION, reason, **task)
    ]
    # The prompt says the task covers every finding of the check in the audit task.
    (prompt,) = soar.made("prompt2")
    assert (
        "one for every finding of a check in an audit task (for findings that name no usable"
        " finding id) covers all of that check's findings in the audit task, listed here or not"
    ) in prompt["message"]
    assert prompt["message"].endswith(
        f"| remediate_audit_finding | {LOGGING_BY_TASK} | {seen} | would have started mitigation"
        f" task iot-defender-soar-6200-audit-plan-{LOGGING_TASK_KEY} |"
    )
    assert soar.comments == [
        f"IoT Audit Remediation (approved by jdoe): {LOGGING_BY_TASK} mitigation started."
    ]


GATEWAY_POLICY_ID = "9e1c4b27-6d3a-4f80-b5c9-2e7a1d8f6b04"


def test_audit_remediates_by_id_what_it_can_and_by_audit_task_the_rest(run_playbook):
    findings = [
        POLICY_FINDING,
        # Known only from the audit's SNS summary: no finding id.
        policy_finding(5, "sensor-policy:2", ""),
        LOGGING_FINDING,
        # A finding id is enough without an audit task; with neither, an analyst.
        policy_finding(6, "gateway-policy:1", GATEWAY_POLICY_ID, task=""),
        finding(7, LOGGING, task_id="", resource_id="210987654321", finding_id=""),
    ]
    answers = mitigations(POLICY_ID, GATEWAY_POLICY_ID, LOGGING_ID, POLICY)
    soar = audit_run(run_playbook, findings, answers, PromptAnswer("jdoe", ["Yes"]))
    # The mitigation of every policy finding in the task also covers the one with an id: it is
    # not mitigated twice.
    by_task = (
        f"{AUDIT_REASON}remediate_audit_finding for {POLICY} on IOT_POLICY sensor-policy:2:"
        f" Policy allows broad access to IoT data plane actions; {POLICY} on IOT_POLICY"
        " legacy-device-policy:4: Policy allows broad access to IoT data plane actions"
        f" (finding {POLICY_ID})"
    )
    gateway = (
        f"{AUDIT_REASON}remediate_audit_finding for {POLICY} on IOT_POLICY gateway-policy:1:"
        f" Policy allows broad access to IoT data plane actions (finding {GATEWAY_POLICY_ID})"
    )
    assert soar.requests("remediate_findings") == [
        audit_request(
            "remediate", POLICY_TASK_KEY, MITIGATION, by_task, audit_task_id=TASK, check_name=POLICY
        ),
        audit_request(
            "remediate", LOGGING_KEY, MITIGATION, LOGGING_REASON, finding_ids=[LOGGING_ID]
        ),
        audit_request(
            "remediate", "55a2e4096f7d", MITIGATION, gateway, finding_ids=[GATEWAY_POLICY_ID]
        ),
    ]
    assert soar.comments == [
        "IoT Audit Remediation (approved by jdoe):"
        f" every {POLICY} finding in audit task {TASK} mitigation started;"
        f" {LOGGING} finding {LOGGING_ID} mitigation started;"
        f" {POLICY} finding {GATEWAY_POLICY_ID} mitigation started;"
        " 1 finding(s) left for an analyst."
    ]
    (note,) = soar.notes
    assert note[1].endswith(
        "#### Left for an analyst\n"
        f"- {LOGGING} on 210987654321: it names no usable finding id or audit task"
    )


def test_audit_validates_finding_ids_and_chunks_as_the_responder_does():
    # The playbook repeats the responder's patterns and limit (SOAR imports it on its own).
    route = playbook("IoT_Audit_Remediation").functions["route_findings"]
    assert _assigned(route, "finding_id_pattern") == responder_requests._FINDING_ID.pattern
    assert _assigned(route, "audit_task_id_pattern") == responder_requests._AUDIT_TASK_ID.pattern
    assert _assigned(route, "max_findings") == MAX_FINDINGS


@pytest.mark.parametrize(
    "findings",
    [
        AUDIT_FINDINGS,
        [
            *(policy_finding(n, f"policy-{n}", f"finding-{n:02d}") for n in range(1, 28)),
            finding(30, LOGGING, resource_id="123456789012", finding_id="x y;|"),
        ],
    ],
    ids=["each-check", "chunked-and-fallback"],
)
def test_audit_requests_are_what_the_responder_accepts(run_playbook, findings):
    # Every request the playbook sends, through the responder's own parsing: none is refused,
    # and a mitigation targets the finding ids sent, or else the audit task and check.
    def accept(request: dict[str, Any]) -> Invocation:
        parsed = parse_request(request)  # raises RefusedError on anything it would refuse
        if parsed.action == MITIGATION and "finding_ids" in request:
            assert parsed["finding_ids"] == request["finding_ids"]
            assert (parsed["audit_task_id"], parsed["check_name"]) == (None, None)
        elif parsed.action == MITIGATION:
            assert parsed["finding_ids"] is None
            assert (parsed["audit_task_id"], parsed["check_name"]) == (TASK, request["check_name"])
        if parsed.action == MITIGATION:
            return mitigated(request)
        key = (parsed.action, parsed["certificate_id"], *(["dry_run"] if parsed.dry_run else []))
        return audit_answers()[key](request)

    prompts: dict[str, PromptAnswer | None] = {"approve_remediation": PromptAnswer("jdoe", ["Yes"])}
    soar = Soar(AUDIT_CONTAINER, findings, accept, prompts=prompts)
    run_playbook("IoT_Audit_Remediation", soar)
    sent = soar.requests("remediate_findings")
    assert sent, "nothing reached the responder's change step"
    assert any("finding_ids" in request for request in sent)
    assert len(soar.sent) == 2 * len(sent)


def test_audit_leaves_findings_without_a_remediation_to_an_analyst(run_playbook):
    findings = [
        CONFLICT_FINDING,
        # IoT - Audit Critical Or High Check Non-Compliant: per check, no resource.
        Artifact(5, {"check_name": SHARED, "severity": "CRITICAL", "task_id": TASK}),
        finding(
            6,
            "IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK",
            resource_type="ROLE_ALIAS",
            resource_id="cam-alias",
        ),
    ]
    soar = audit_run(run_playbook, findings, {}, None)
    assert soar.sent == []
    assert soar.made("prompt2") == []
    assert soar.notes == [
        (
            "IoT Audit Remediation",
            "IoT Audit Remediation for SOAR container 6200:"
            " IoT - Audit New Non-Compliant Finding.\n\n"
            "Approval: not asked: nothing to remediate.\n\n"
            "#### Left for an analyst\n"
            f"- CONFLICTING_CLIENT_IDS_CHECK on {LOBBY}: no automated remediation for this check\n"
            f"- {SHARED} on the account: it names no certificate id\n"
            "- IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK on ROLE_ALIAS cam-alias:"
            " no automated remediation for this check",
        )
    ]
    assert soar.comments == [
        "IoT Audit Remediation (not asked: nothing to remediate): 3 finding(s) left for an analyst."
    ]


# --- IoT Device Release -----------------------------------------------------------------------

QUARANTINE_RECORD = {
    "quarantined_at": "2026-12-01T09:12:00Z",
    "requested_by": "soar:iot_open_port_response:approved-by:jdoe",
    "reason": "telnet on tcp/23",
    "certificates": [CERT_A],
}
RECORD = (
    "quarantined_at: 2026-12-01T09:12:00Z; reason: telnet on tcp/23;"
    " requested_by: soar:iot_open_port_response:approved-by:jdoe"
)
HELD = quarantined_state(device(quarantine=QUARANTINE_RECORD))
REASON = "Telnet was a maintenance session; firmware 2.0.11 removes it"
RELEASE_DESCRIBE = {
    "action": "describe_thing",
    "request_id": "soar-4711-release-describe-b802713f91e9",
    "thing_name": LOBBY,
}
RELEASE = {
    "action": "release_thing",
    "request_id": "soar-4711-release-b802713f91e9",
    "requested_by": "soar:iot_device_release:approved-by:jdoe",
    "reason": f"{REASON} (released from SOAR container 4711 by jdoe)",
    "thing_name": LOBBY,
}


def release_run(
    run_playbook: Callable[[str, Soar], Soar],
    answers: dict[tuple[str, ...], Answer],
    prompt: PromptAnswer | None,
    state: dict[str, Any] = HELD,
) -> Soar:
    answers = {("describe_thing", LOBBY): described(state), **answers}
    soar = Soar(PORT_CONTAINER, [TELNET], scripted(answers), prompts={"approve_release": prompt})
    return run_playbook("IoT_Device_Release", soar)


def test_release_approved_with_a_reason_undoes_the_quarantine(run_playbook):
    release = changed(HELD, device(), "released cam-lobby-2: 1 certificate reactivated")
    soar = release_run(
        run_playbook, {("release_thing", LOBBY): release}, PromptAnswer("jdoe", ["Yes", REASON])
    )
    assert soar.sent == [RELEASE_DESCRIBE, RELEASE]
    (prompt,) = soar.made("prompt2")
    assert [r["prompt"] for r in prompt["response_types"]] == [
        "Release these devices?",
        "Reason for the release (what the investigation found)",
    ]
    assert prompt["message"] == (
        "Release these devices from quarantine (SOAR container 4711, IoT - Risky Port Listening)?"
        " The responder undoes what its quarantine changed: it removes each device from the"
        " quarantine thing group and reactivates only the certificates the quarantine"
        " deactivated.\n\n"
        "| Device | Quarantine | Groups | Certificates |\n| --- | --- | --- | --- |\n"
        f"| cam-lobby-2 | {RECORD} | cameras, iot-defender-splunk-quarantine"
        " | 3f1c2a9b77e0 INACTIVE |"
    )
    assert soar.notes == [
        (
            "IoT Device Release",
            "IoT Device Release for SOAR container 4711: IoT - Risky Port Listening.\n\n"
            f"Approval: approved by jdoe: {REASON}.\n\n"
            "#### cam-lobby-2: released\n"
            f"- Quarantine: {RECORD}\n"
            "- Responder: ok: released cam-lobby-2: 1 certificate reactivated"
            " (request soar-4711-release-b802713f91e9,"
            " response 0b7a1f5e-0000-4000-8000-000000000001)\n"
            "- Before: groups cameras, iot-defender-splunk-quarantine; quarantined;"
            " certificates 3f1c2a9b77e0 INACTIVE\n"
            "- After: groups cameras; not quarantined; certificates 3f1c2a9b77e0 ACTIVE",
        )
    ]
    assert soar.comments == [
        f"IoT Device Release (approved by jdoe: {REASON}): cam-lobby-2 released."
    ]


@pytest.mark.parametrize(
    ("answer", "approval"),
    [
        (PromptAnswer("jdoe", ["No", "still under investigation"]), "declined by jdoe"),
        (PromptAnswer("jdoe", ["Yes", ""]), "not released: jdoe gave no reason"),
        (None, "no answer before the prompt expired"),
    ],
    ids=["declined", "no-reason", "expired"],
)
def test_release_without_approval_and_reason_changes_nothing(run_playbook, answer, approval):
    soar = release_run(run_playbook, {}, answer)
    assert soar.sent == [RELEASE_DESCRIBE]
    assert soar.comments == [f"IoT Device Release ({approval}): cam-lobby-2 not released."]


@pytest.mark.parametrize(
    ("state", "why"),
    [
        (device(), "not quarantined"),
        (
            quarantined_state(device()),
            "quarantined by something other than the responder (no quarantine record, e.g. a"
            " Device Defender mitigation action): the responder does not release it; remove it"
            " from the quarantine group by hand",
        ),
    ],
    ids=["not-quarantined", "quarantined-by-a-mitigation-action"],
)
def test_release_only_offers_what_the_responder_quarantined(run_playbook, state, why):
    soar = release_run(run_playbook, {}, None, state=state)
    assert soar.sent == [RELEASE_DESCRIBE]
    assert soar.made("prompt2") == []
    assert soar.comments == [
        f"IoT Device Release (not asked: no device to release): cam-lobby-2 not released ({why})."
    ]


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (
            refused("cam-lobby-2 was put into the quarantine group by a mitigation action"),
            "refused: cam-lobby-2 was put into the quarantine group by a mitigation action",
        ),
        (
            failed("ResourceNotFoundException", "cam-lobby-2 does not exist"),
            "error: AWS IoT call failed: cam-lobby-2 does not exist [ResourceNotFoundException]",
        ),
        (
            changed(HELD, HELD, "released cam-lobby-2"),
            "ok: released cam-lobby-2 (but its after state is not released)",
        ),
    ],
    ids=["refused", "error", "ok-but-still-quarantined"],
)
def test_release_reports_a_refused_or_failed_release(run_playbook, answer, said):
    soar = release_run(
        run_playbook, {("release_thing", LOBBY): answer}, PromptAnswer("jdoe", ["Yes", REASON])
    )
    assert soar.sent == [RELEASE_DESCRIBE, RELEASE]
    assert soar.comments == [
        f"IoT Device Release (approved by jdoe: {REASON}): cam-lobby-2 not released ({said})."
    ]
