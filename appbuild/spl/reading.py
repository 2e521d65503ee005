"""Which fields a search reads, and whether its data or its own pipeline provides them.

A static reading for the detection and dashboard tests: a filter, group or aggregation on a
field the events do not have is a search that silently finds nothing. After a command it does
not model (timechart, xyseries...) the rest of the pipeline is not checked, so an unusual
search makes this reading lenient, never wrong about a field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Final

from appbuild.spl.lexer import split_outside, stages, words

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_QUOTED_FIELD = re.compile(r"'([^']+)'")
_WORD = re.compile(r"[A-Za-z_][\w.{}]*")
_KEYWORDS: Final = frozenset(
    {"and", "or", "not", "xor", "like", "in", "true", "false", "null", "as", "by"}
)
# Commands that neither read checked fields nor change which fields exist.
_QUIET: Final = frozenset({"search", "sort", "head", "tail", "outputlookup", "convert", "reverse"})
# Fields Splunk indexes for every event, usable in tstats.
_INDEXED_DEFAULTS: Final = frozenset({"_time", "sourcetype", "source", "host", "index"})
_SUBSEARCH = re.compile(r"\[(.*)\]", re.DOTALL)


class ReadingError(ValueError):
    """A command this reading models, written in a form it cannot read."""


def expression_fields(expression: str) -> set[str]:
    """Field names an eval expression reads: 'quoted' names and bare words that are not calls."""
    text = _STRING.sub('""', expression)
    names = set(_QUOTED_FIELD.findall(text))
    text = _QUOTED_FIELD.sub(" ", text)
    for match in _WORD.finditer(text):
        word = match.group()
        following = text[match.end() :].lstrip()
        if following.startswith("(") or word.lower() in _KEYWORDS:
            continue
        names.add(word)
    return names


def renamed_fields(text: str) -> list[str]:
    """Field names of 'a AS b, c' lists: b and c."""
    names = [w for w in re.split(r"[\s,]+", text.strip()) if w]
    found = []
    i = 0
    while i < len(names):
        if i + 2 < len(names) and names[i + 1].upper() == "AS":
            found.append(names[i + 2])
            i += 3
        else:
            found.append(names[i])
            i += 1
    return found


@dataclass
class Aggregation:
    """A stats-like command: outputs, the fields it reads, its by-fields and where clause."""

    outputs: list[str] = field(default_factory=list)
    reads: set[str] = field(default_factory=set)
    by: list[str] = field(default_factory=list)
    where: str = ""


def parse_aggregation(args: str) -> Aggregation:
    """`<func>(<arg>) [AS name] ... [where ...] [by f1 f2 | BY f1, f2] [option=value]`."""
    result = Aggregation()
    items = [part for word in words(args) for part in split_outside(word, ",") if part]
    in_by = in_where = False
    i = 0
    while i < len(items):
        item = items[i]
        lowered = item.lower()
        if lowered == "by":
            in_by, in_where = True, False
        elif lowered == "where" and not in_by:
            in_where = True
        elif in_where:
            result.where += f" {item}"
        elif "=" in item and "(" not in item.split("=", 1)[0]:
            pass  # an option such as span=5m or limit=50
        elif in_by:
            result.by.append(item.strip('"'))
        else:
            i = _aggregate(result, items, i)
        i += 1
    return result


def _aggregate(result: Aggregation, items: Sequence[str], i: int) -> int:
    """Read the function call at `items[i]` (and its AS name); the index of its last item."""
    item = items[i]
    call = re.fullmatch(r"(\w+)(?:\((.*)\))?", item, re.DOTALL)
    if call is None:
        raise ReadingError(f"cannot read aggregation {item!r}")
    function, argument = call.group(1), call.group(2)
    name = item
    if i + 2 < len(items) and items[i + 1].lower() == "as":
        name = items[i + 2]
        i += 2
    elif argument is None:
        name = function
    result.outputs.append(name.strip('"'))
    if argument:
        inner = re.fullmatch(r"eval\((.*)\)", argument, re.DOTALL)
        if inner:
            result.reads |= expression_fields(inner.group(1))
        else:
            result.reads.add(argument.strip().strip('"'))
    return i


@dataclass
class Scope:
    """Fields available at a point of the pipeline; `fields is None` while results are events."""

    fields: set[str] | None = None
    defined: set[str] = field(default_factory=set)
    open: bool = False  # after a command whose outputs this reading cannot know

    def has(self, name: str, event_fields: set[str]) -> bool:
        if self.open or name in self.defined:
            return True
        if self.fields is not None:
            return name in self.fields
        return name in event_fields

    def add(self, names: Iterable[str]) -> None:
        names = set(names)
        self.defined |= names
        if self.fields is not None:
            self.fields |= names

    def replace(self, names: Iterable[str]) -> None:
        self.fields = set(names)
        self.defined = set()


def missing_fields(
    spl: str,
    event_fields: set[str],
    index_fields: set[str],
    lookups: Mapping[str, Sequence[str]],
) -> list[str]:
    """Fields read by where, by and stats-like functions that nothing provides, as messages.

    `spl` is an expanded search (no macro calls); `lookups` maps lookup names to columns.
    """
    reader = _Reader(event_fields, index_fields, lookups)
    reader.walk(stages(spl), Scope())
    return reader.problems


class _Reader:
    """Walks a pipeline, tracking which fields exist, and notes reads of fields that do not."""

    def __init__(
        self, event_fields: set[str], index_fields: set[str], lookups: Mapping[str, Sequence[str]]
    ) -> None:
        self.event_fields = event_fields
        self.index_fields = index_fields | _INDEXED_DEFAULTS
        self.lookups = lookups
        self.problems: list[str] = []
        self.handlers: dict[str, Callable[[Scope, str, str], None]] = {
            "stats": self.stats,
            "eventstats": self.stats,
            "streamstats": self.stats,
            "tstats": self.tstats,
            "where": self.where,
            "eval": self.eval,
            "fieldformat": self.eval,
            "lookup": self.lookup,
            "rename": self.rename,
            "table": self.table,
            "fields": self.table,
            "fillnull": self.fillnull,
            "addinfo": self.addinfo,
            "dedup": self.read_words,
            "mvexpand": self.read_words,
            "bin": self.read_words,
            "bucket": self.read_words,
            "fit": self.fit,
            "append": self.append,
            "multisearch": self.multisearch,
            "makeresults": self.makeresults,
        }

    def walk(self, pipeline: list[str], scope: Scope) -> Scope:
        """The base search (a first stage that is no known command) is not read."""
        for position, stage in enumerate(pipeline):
            command, _, args = stage.partition(" ")
            handler = self.handlers.get(command)
            if handler is not None:
                handler(scope, command, args)
            elif position > 0 and command not in _QUIET:
                scope.open = True
        return scope

    def need(
        self, scope: Scope, names: Iterable[str], command: str, pool: Set[str] | None = None
    ) -> None:
        """Note each name neither the scope (or `pool`, when given) has."""
        for name in names:
            known = scope.has(name, self.event_fields) if pool is None else name in pool
            if not known:
                self.problems.append(f"{command}: {name!r} is not in the data or made earlier")

    def stats(self, scope: Scope, command: str, args: str) -> None:
        aggregation = parse_aggregation(args)
        self.need(scope, aggregation.reads, command)
        self.need(scope, aggregation.by, f"{command} by")
        if command == "stats":
            scope.replace([*aggregation.outputs, *aggregation.by])
        else:
            scope.add(aggregation.outputs)

    def tstats(self, scope: Scope, command: str, args: str) -> None:
        """tstats reads index-time fields only."""
        aggregation = parse_aggregation(args)
        self.need(scope, aggregation.reads, command, self.index_fields)
        self.need(scope, aggregation.by, f"{command} by", self.index_fields)
        keys = re.findall(r"(\w+)\s*(?:=|::)", aggregation.where)
        self.need(scope, keys, f"{command} where", self.index_fields)
        scope.replace([*aggregation.outputs, *aggregation.by])

    def where(self, scope: Scope, command: str, args: str) -> None:
        self.need(scope, expression_fields(args), command)

    def eval(self, scope: Scope, command: str, args: str) -> None:
        """Assignments only: eval reads optional fields on purpose (coalesce, isnull)."""
        scope.add(part.split("=", 1)[0].strip().strip("'") for part in split_outside(args, ","))

    def lookup(self, scope: Scope, command: str, args: str) -> None:
        """`lookup <table> <column> [AS <field>] ... [OUTPUT|OUTPUTNEW <column> [AS <field>]]`."""
        items = args.split()
        while items and "=" in items[0]:
            items.pop(0)
        table, rest = items[0], " ".join(items[1:])
        if table not in self.lookups:
            self.problems.append(f"lookup: {table!r} is not a lookup of the app")
            return
        columns = set(self.lookups[table])
        parts = re.split(r"\bOUTPUT(?:NEW)?\b", rest, maxsplit=1)
        inputs = _pairs(parts[0])
        self.need(scope, [column for column, _ in inputs], f"lookup {table} (column)", columns)
        self.need(scope, [name for _, name in inputs], f"lookup {table}")
        if len(parts) == 2:
            outputs = _pairs(parts[1])
            self.need(scope, [c for c, _ in outputs], f"lookup {table} OUTPUT (column)", columns)
            scope.add(name for _, name in outputs)
        else:
            scope.add(columns - {column for column, _ in inputs})

    def rename(self, scope: Scope, command: str, args: str) -> None:
        for old, new in re.findall(r'("[^"]+"|\S+)\s+AS\s+("[^"]+"|\S+)', args, re.I):
            self.need(scope, [old.strip('"')], command)
            if scope.fields is not None:
                scope.fields.discard(old.strip('"'))
            scope.add([new.strip('"')])

    def table(self, scope: Scope, command: str, args: str) -> None:
        """`table` and `fields` keep the named fields; `fields -` removes them."""
        names = [n for n in re.split(r"[\s,]+", args) if n and n not in {"+", "-"}]
        if not args.startswith("-"):
            self.need(scope, [n for n in names if "*" not in n], command)
            scope.replace(names)

    def fillnull(self, scope: Scope, command: str, args: str) -> None:
        scope.add(word for word in args.split() if "=" not in word)

    def addinfo(self, scope: Scope, command: str, args: str) -> None:
        scope.add(["info_min_time", "info_max_time", "info_search_time", "info_sid"])

    def read_words(self, scope: Scope, command: str, args: str) -> None:
        names = [w for w in args.split() if "=" not in w and not w.isdigit()]
        self.need(scope, [w.lstrip("+-") for w in names if w not in {"-", "+", "sortby"}], command)

    def fit(self, scope: Scope, command: str, args: str) -> None:
        """MLTK: `fit <algorithm> <field> ...` adds IsOutlier(<field>) and friends."""
        target = args.split()[1]
        self.need(scope, [target], command)
        scope.add([f"IsOutlier({target})", f"ProbabilityDensity({target})", "BoundaryRanges"])

    def append(self, scope: Scope, command: str, args: str) -> None:
        sub = self.walk(stages(_subsearch(args.strip(), command)), Scope())
        if scope.fields is not None and sub.fields is not None:
            scope.fields |= sub.fields | sub.defined

    def multisearch(self, scope: Scope, command: str, args: str) -> None:
        """`multisearch [search ...] [search ...]`: the events of every subsearch, with the fields
        each made."""
        subsearches = words(args)
        if not subsearches:
            raise ReadingError("multisearch without subsearches")
        for part in subsearches:
            sub = self.walk(stages(_subsearch(part, command)), Scope())
            scope.add(sub.defined)
            scope.open |= sub.open

    def makeresults(self, scope: Scope, command: str, args: str) -> None:
        scope.replace(["_time"])


def _subsearch(text: str, command: str) -> str:
    inner = _SUBSEARCH.fullmatch(text)
    if inner is None:
        raise ReadingError(f"{command} takes subsearches only: {text!r}")
    return inner.group(1)


def _pairs(text: str) -> list[tuple[str, str]]:
    """(column, field) of 'a AS b, c' lists: (a, b) and (c, c)."""
    names = renamed_fields(text)
    columns = [w for w in re.split(r"[\s,]+", re.sub(r"\s+AS\s+\S+", " ", text, flags=re.I)) if w]
    return list(zip(columns, names, strict=True))
