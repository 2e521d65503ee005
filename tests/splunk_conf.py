"""Reading the app's .conf files as Splunk does, for the app, detection and dashboard tests."""

from __future__ import annotations

import configparser
import re

from appbuild.spl.knowledge import read_conf
from appbuild.spl.reading import renamed_fields

__all__ = ["props_outputs", "read_conf", "stanza"]


def stanza(parser: configparser.RawConfigParser, section: str) -> dict[str, str]:
    """One stanza's settings, without the parser's own `__name__` entry."""
    return {k: v for k, v in parser.items(section) if k != "__name__"}


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
