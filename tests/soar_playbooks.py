"""The SOAR playbooks' files as the tests read them, and the detections that feed them.

A playbook is three files in soar/playbooks: the SOAR export (`<Name>.json`, the graph, and
`<Name>.py`, one function per block) and its metadata (`<Name>.yml`, security_content style,
whose `tags.detections` names the detections wired to it, `tags.playbook_fields` the artifact
CEF fields it collects by name and `tags.evidence_fields` the others it reads when an alert has
them). The result fields of a detection are the fields of the `table` that ends its search (and
each variant's): Splunk sends them to SOAR as the artifact's CEF.

A playbook reads an artifact's CEF in three ways: it collects a field by name
(`artifact:*.cef.<field>`, filtered or not), its filter tests whether a field is there, and its
custom code reads a field from the whole CEF (`artifact:*.cef`) with its `cef_values(cef,
"<field>")` helper, which gives nothing for a field the alert does not send.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import yaml

from appbuild.build_app import DETECTIONS_DIR, REPORTS_DIR, load_definitions

PLAYBOOKS_DIR = Path(__file__).resolve().parent.parent / "soar" / "playbooks"
NAMES = tuple(sorted(path.stem for path in PLAYBOOKS_DIR.glob("*.json")))
# IoT_Device_Release is run by hand on the container of a quarantine: the detections that feed
# it are those wired to the playbooks that quarantine.
RELEASES = {"IoT_Device_Release": ("IoT_Open_Port_Response", "IoT_Exfiltration_Containment")}
EVIDENCE_HELPER = "cef_values"
_CEF = re.compile(r"artifact:\*\.cef\.(\w+)")
_DATAPATH = re.compile(r"(?:filtered-data:\w+:condition_\d+:)?artifact:\*\.cef(?:\.(\w+))?")
_CONDITION_APIS = {"condition", "decision"}
_TABLE = re.compile(r"\|\s*table\s+([^|]+)")


@dataclass(frozen=True)
class Playbook:
    name: str

    @cached_property
    def export(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self._read(".json"))
        return document

    @cached_property
    def code(self) -> str:
        return self._read(".py")

    @cached_property
    def meta(self) -> dict[str, Any]:
        document: dict[str, Any] = yaml.safe_load(self._read(".yml"))
        return document

    @cached_property
    def tree(self) -> ast.Module:
        return ast.parse(self.code)

    @property
    def nodes(self) -> dict[str, dict[str, Any]]:
        nodes: dict[str, dict[str, Any]] = self.export["coa"]["data"]["nodes"]
        return nodes

    @property
    def edges(self) -> list[dict[str, Any]]:
        edges: list[dict[str, Any]] = self.export["coa"]["data"]["edges"]
        return edges

    def function_name(self, node_id: str) -> str:
        return str(self.nodes[node_id]["data"]["functionName"])

    @cached_property
    def functions(self) -> dict[str, ast.FunctionDef]:
        return {
            statement.name: statement
            for statement in self.tree.body
            if isinstance(statement, ast.FunctionDef)
        }

    def named_fields(self) -> set[str]:
        """Every artifact CEF field a datapath names, anywhere in the code or the graph."""
        return set(_CEF.findall(self.code)) | set(_CEF.findall(json.dumps(self.export)))

    def collected_fields(self) -> set[str]:
        """The artifact CEF fields the playbook collects by name: `artifact:*.cef.<field>`."""
        return (self._code_fields(conditions=False) | self._graph_fields(conditions=False)) - {""}

    def collects_whole_cef(self) -> bool:
        """Whether the playbook collects the artifacts' whole CEF: `artifact:*.cef`."""
        return "" in self._code_fields(conditions=False) | self._graph_fields(conditions=False)

    def filter_fields(self) -> set[str]:
        """The artifact CEF fields its filters and decisions test for."""
        return (self._code_fields(conditions=True) | self._graph_fields(conditions=True)) - {""}

    def evidence_reads(self) -> list[str | None]:
        """The field each call of the evidence helper reads from the CEF, None when the call
        does not name it with a literal."""
        return [
            call.args[1].value
            if len(call.args) == 2
            and isinstance(call.args[1], ast.Constant)
            and isinstance(call.args[1].value, str)
            else None
            for call in ast.walk(self.tree)
            if isinstance(call, ast.Call)
            and isinstance(call.func, ast.Name)
            and call.func.id == EVIDENCE_HELPER
        ]

    def evidence_fields(self) -> set[str]:
        """The artifact CEF fields its custom code reads from the whole CEF."""
        return {field for field in self.evidence_reads() if field is not None}

    def _code_fields(self, *, conditions: bool) -> set[str]:
        """The fields of the CEF datapaths the code names ("" for the whole CEF): in the
        conditions of its filters and decisions, or anywhere else."""
        tested = {
            id(node)
            for call in ast.walk(self.tree)
            if isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr in _CONDITION_APIS
            and ast.unparse(call.func.value) == "phantom"
            for node in ast.walk(call)
        }
        return {
            field
            for node in ast.walk(self.tree)
            if isinstance(node, ast.Constant) and (id(node) in tested) == conditions
            for field in _datapath_fields(node.value)
        }

    def _graph_fields(self, *, conditions: bool) -> set[str]:
        """The same in the graph: in its blocks' conditions, or in anything else they take."""
        return {
            field
            for node in self.nodes.values()
            for key, value in node["data"].items()
            if (key == "conditions") == conditions
            for field in _datapath_fields(value)
        }

    def _read(self, suffix: str) -> str:
        return (PLAYBOOKS_DIR / f"{self.name}{suffix}").read_text(encoding="utf-8")


def _datapath_fields(value: Any) -> set[str]:
    """The CEF fields of the artifact datapaths in a value ("" for the whole CEF): a string
    that is one such datapath, or the strings in a list or dict, at any depth."""
    if isinstance(value, str):
        match = _DATAPATH.fullmatch(value)
        return {match[1] or ""} if match else set()
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return {field for item in items for field in _datapath_fields(item)}


@cache
def playbook(name: str) -> Playbook:
    return Playbook(name)


def result_fields(search: str) -> list[str]:
    """The fields of the `table` that ends a search: what its alert sends as CEF fields."""
    tables = _TABLE.findall(search)
    return tables[-1].split() if tables else []


@cache
def detection_results() -> dict[str, list[list[str]]]:
    """Detection file stem -> the result fields of its search and of each variant's."""
    return {
        definition.stem: [result_fields(search) for search in definition.searches()]
        for definition in load_definitions(DETECTIONS_DIR, REPORTS_DIR)
        if definition.path.parent == DETECTIONS_DIR
    }


@cache
def wired_detections(name: str) -> list[str]:
    """The detections (file stems) whose alerts reach a playbook: those naming it (`playbook:`),
    or for the release playbook those naming a playbook whose quarantines it releases."""
    feeding = RELEASES.get(name, (name,))
    return sorted(
        definition.stem
        for definition in load_definitions(DETECTIONS_DIR, REPORTS_DIR)
        if definition.spec.get("playbook") in feeding
    )
