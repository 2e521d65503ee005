"""Reading the app's .conf files as Splunk does, for the app, detection and dashboard tests."""

from __future__ import annotations

import re
from pathlib import Path

from addonfactory_splunk_conf_parser_lib import TABConfigParser


def read_conf(path: Path) -> TABConfigParser:
    """Splunk's own .conf parser (keeps case, continuation lines and comments)."""
    parser = TABConfigParser()
    parser.read(str(path))
    return parser


def stanza(parser: TABConfigParser, section: str) -> dict[str, str]:
    """One stanza's settings, without the parser's own `__name__` entry."""
    return {k: v for k, v in parser.items(section) if k != "__name__"}


def renamed_fields(text: str) -> list[str]:
    """Field names of 'a AS b, c' lists: b and c."""
    words = [w for w in re.split(r"[\s,]+", text.strip()) if w]
    names = []
    i = 0
    while i < len(words):
        if i + 2 < len(words) and words[i + 1].upper() == "AS":
            names.append(words[i + 2])
            i += 3
        else:
            names.append(words[i])
            i += 1
    return names


def props_outputs(settings: dict[str, str]) -> set[str]:
    """Fields a props stanza creates: EVAL-x, FIELDALIAS ... AS x, LOOKUP ... OUTPUT[NEW] a AS x."""
    created = set()
    for key, value in settings.items():
        if key.startswith("EVAL-"):
            created.add(key.removeprefix("EVAL-"))
        elif key.startswith("FIELDALIAS-"):
            created.update(re.findall(r"\bAS\s+(\S+)", value))
        elif key.startswith("LOOKUP-"):
            outputs = re.split(r"\bOUTPUT(?:NEW)?\b", value, maxsplit=1)[1]
            created.update(renamed_fields(outputs))
    return created
