"""What a Splunk app defines (macros, lookups, eventtypes), read from its .conf files with
Splunk's own parser, and macro expansion against it."""

from __future__ import annotations

import configparser
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final

from addonfactory_splunk_conf_parser_lib import TABConfigParser

from appbuild.spl.lexer import MacroCall, macro_calls, normalise
from appbuild.spl.validation import Validation

_MACRO_STANZA = re.compile(r"(.+?)\s*\(\s*(\d+)\s*\)")
# Macros calling macros deeper than this are a cycle: Splunk itself stops far sooner.
_MAX_EXPANSION_DEPTH: Final = 50


@dataclass(frozen=True)
class Macro:
    """One macros.conf stanza: `name(arity)` with its settings."""

    arity: int
    args: tuple[str, ...] = ()
    definition: str = ""
    description: str = ""
    iseval: bool = False
    validation: Validation | None = None


@dataclass(frozen=True)
class Knowledge:
    """What the app defines, so references to undefined knowledge objects can be caught.

    `lookups` maps each lookup definition (transforms.conf) and lookup file (lookups/*.csv) to
    its columns: a KV store lookup's `fields_list`, a CSV file's header; () when unknown.
    """

    macros: Mapping[str, Macro]
    lookups: Mapping[str, tuple[str, ...]]
    eventtypes: frozenset[str]

    @classmethod
    def from_app(cls, app_dir: Path) -> Knowledge:
        """Read from an app directory; raises configparser.Error on a .conf that does not parse."""
        default = app_dir / "default"
        macros_conf = read_conf(default / "macros.conf")
        macros = {}
        for stanza in stanzas(macros_conf):
            name, macro = macro_stanza(macros_conf, stanza)
            macros[name] = macro
        files = {p.name: _csv_header(p) for p in sorted((app_dir / "lookups").glob("*.csv"))}
        transforms = read_conf(default / "transforms.conf")
        lookups = dict(files)
        for stanza in stanzas(transforms):
            fields_list = transforms.get(stanza, "fields_list", fallback="")
            columns = tuple(c.strip() for c in fields_list.split(",") if c.strip())
            filename = transforms.get(stanza, "filename", fallback="")
            lookups[stanza] = columns or files.get(filename, ())
        return cls(
            macros=MappingProxyType(macros),
            lookups=MappingProxyType(lookups),
            eventtypes=frozenset(stanzas(read_conf(default / "eventtypes.conf"))),
        )


def read_conf(path: Path) -> configparser.RawConfigParser:
    """Splunk's .conf parser (case, continuation lines and comments kept); empty if no file."""
    parser: configparser.RawConfigParser = TABConfigParser()
    if path.is_file():
        parser.read(path, encoding="utf-8")
    return parser


def stanzas(parser: configparser.RawConfigParser) -> list[str]:
    """The parser's stanzas, Splunk's [default] left out."""
    return [s for s in parser.sections() if s.strip().lower() != "default"]


def macro_signature(stanza: str) -> tuple[str, int]:
    """`name(2)` -> ("name", 2); `name` -> ("name", 0)."""
    match = _MACRO_STANZA.fullmatch(stanza.strip())
    return (match.group(1), int(match.group(2))) if match else (stanza.strip(), 0)


def truthy(value: str | None) -> bool:
    """A .conf boolean as Splunk reads it."""
    return (value or "").strip().lower() in ("1", "true", "t", "yes", "y")


def macro_stanza(parser: configparser.RawConfigParser, stanza: str) -> tuple[str, Macro]:
    """The macro a macros.conf stanza defines, and its name."""
    name, arity = macro_signature(stanza)
    args = tuple(a.strip() for a in parser.get(stanza, "args", fallback="").split(",") if a.strip())
    expression = parser.get(stanza, "validation", fallback="").strip()
    return name, Macro(
        arity=arity,
        args=args,
        definition=parser.get(stanza, "definition", fallback=""),
        description=parser.get(stanza, "description", fallback=""),
        iseval=truthy(parser.get(stanza, "iseval", fallback=None)),
        validation=Validation(args, expression) if expression else None,
    )


def _csv_header(path: Path) -> tuple[str, ...]:
    with path.open(encoding="utf-8") as handle:
        first = handle.readline().strip()
    return tuple(column.strip() for column in first.split(",") if column.strip())


# --- expansion ------------------------------------------------------------------------------------


class ExpansionError(ValueError):
    """A macro call that cannot be expanded: unknown, wrong arity, eval-built, or a cycle."""


def expand(spl: str, knowledge: Knowledge) -> str:
    """The search with every macro call replaced by its definition, recursively, as Splunk
    does before running it. Quoted arguments lose their quotes; `$arg$` takes the value."""
    return _expand(normalise(spl), knowledge, depth=0)


def _expand(text: str, knowledge: Knowledge, depth: int) -> str:
    if depth > _MAX_EXPANSION_DEPTH:
        raise ExpansionError(f"macros nest deeper than {_MAX_EXPANSION_DEPTH}: a cycle?")
    parts: list[str] = []
    last = 0
    for call in macro_calls(text):
        parts += [text[last : call.token.start], _body(call, knowledge, depth)]
        last = call.token.end
    return "".join([*parts, text[last:]])


def _body(call: MacroCall, knowledge: Knowledge, depth: int) -> str:
    macro = knowledge.macros.get(call.name)
    if macro is None:
        raise ExpansionError(f"macro `{call.name}` is not defined")
    if macro.arity != len(call.args):
        raise ExpansionError(
            f"macro `{call.name}` takes {macro.arity} argument(s), called with {len(call.args)}"
        )
    if len(macro.args) != macro.arity:
        raise ExpansionError(
            f"macro `{call.name}` takes {macro.arity} argument(s), args lists {len(macro.args)}"
        )
    if macro.iseval:
        raise ExpansionError(f"macro `{call.name}` is an eval expression: it cannot be expanded")
    body = normalise(macro.definition)
    for arg, value in zip(macro.args, call.args, strict=True):
        body = body.replace(f"${arg}$", value.removeprefix('"').removesuffix('"'))
    return _expand(body, knowledge, depth + 1)
