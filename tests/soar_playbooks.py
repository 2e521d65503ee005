"""The SOAR playbooks' files as the tests read them, and the detections that feed them.

A playbook is three files in soar/playbooks: the SOAR export (`<Name>.json`, the graph, and
`<Name>.py`, one function per block) and its metadata (`<Name>.yml`, security_content style,
whose `tags.detections` and `tags.playbook_fields` name the detections it serves and the
artifact CEF fields it reads). The result fields of a detection are the fields of the `table`
that ends its search (and each variant's): Splunk sends them to SOAR as the artifact's CEF.
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

from tools.build_app import DETECTIONS_DIR, REPORTS_DIR, load_definitions

PLAYBOOKS_DIR = Path(__file__).resolve().parent.parent / "soar" / "playbooks"
NAMES = tuple(sorted(path.stem for path in PLAYBOOKS_DIR.glob("*.json")))
_CEF = re.compile(r"artifact:\*\.cef\.(\w+)")
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

    def collected_fields(self) -> set[str]:
        """The artifact CEF fields the playbook reads, in its code and in its graph."""
        return set(_CEF.findall(self.code)) | set(_CEF.findall(json.dumps(self.export)))

    def _read(self, suffix: str) -> str:
        return (PLAYBOOKS_DIR / f"{self.name}{suffix}").read_text(encoding="utf-8")


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
