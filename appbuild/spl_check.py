"""Offline structural checks for the SPL that the Splunk app ships.

No maintained SPL parser runs on Python 3, so this is a small, strict lexer and pipeline walker.
It cannot tell whether a search finds the right events; it catches the mistakes that make Splunk
reject a search or quietly search the wrong data: unbalanced quotes, parentheses, brackets and
backticks, empty pipeline stages, misspelt commands, macros, lookups and eventtypes the app does
not define, macro arguments their macro's validation rejects, hard-coded indexes, and
scheduled searches with no time bound of their own.

`python -m appbuild.spl_check APP_DIR` checks every search the app ships and exits 1 on a problem.
"""

from __future__ import annotations

import argparse
import configparser
import difflib
import fnmatch
import json
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal

from addonfactory_splunk_conf_parser_lib import TABConfigParser

# --- what SPL is known ----------------------------------------------------------------------------


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Splunk Enterprise search commands (Search Reference, with their documented aliases), the
# Machine Learning Toolkit's commands, and the commands of the summary-indexing family.
COMMANDS: Final = _names(
    """
    abstract accum addcoltotals addinfo addtotals af analyzefields anomalies anomalousvalue
    anomalydetection append appendcols appendpipe arules associate audit autoregress bin bucket
    bucketdir chart cluster cofilter collect concurrency contingency convert correlate counttable
    ctable datamodel datamodelsimple dbinspect dedup delete delta diff discretize dump erex eval
    eventcount eventstats excerpt extract fieldformat fields fieldsummary filldown fillnull
    findtypes folderize foreach format from fromjson gauge gentimes geom geomfilter geostats head
    highlight history iconify inputcsv inputintelligence inputlookup iplocation join kmeans kv
    kvform loadjob localize localop lookup makecontinuous makemv makeresults map mcatalog mcollect
    metadata metasearch meventcollect mpreview msearch mstats multikv multisearch mvcombine
    mvexpand nomv outlier outputcsv outputlookup outputtext overlap pivot predict rangemap rare
    redistribute regex reltime rename replace require rest return reverse rex rtorder run
    savedsearch script scrub search searchtxn selfjoin sendalert sendemail set setfields sichart
    sirare sistats sitimechart sitop sort spath stats strcat streamstats summaryindex table tags
    tail timechart timewrap tojson top transaction transam transpose trendline tscollect tstats
    typeahead typelearner typer union uniq untable walklex where x11 xmlkv xmlunescape xpath
    xyseries
    apply deletemodel fit listmodels sample score summary
    """
)

# Commands that can start a pipeline: after a leading `|`, or first in a subsearch.
GENERATING: Final = _names(
    """
    datamodel datamodelsimple dbinspect eventcount from gentimes history inputcsv
    inputintelligence inputlookup listmodels loadjob makeresults mcatalog metadata metasearch
    mpreview msearch mstats multisearch pivot rest savedsearch search searchtxn set summary tstats
    typeahead union walklex
    """
)

# Generating commands that read no events, so a time bound means nothing to them.
UNTIMED: Final = _names("gentimes inputcsv inputlookup listmodels makeresults rest")

# Commands whose subsearch is a pipeline applied to the current results, not a new search.
_SUBPIPELINE_PARENTS: Final = frozenset({"appendpipe", "foreach"})
_ASSIGNING: Final = frozenset({"eval", "fieldformat"})
_LOOKUP_COMMANDS: Final = frozenset({"lookup", "inputlookup", "outputlookup"})
_TIME_KEYS: Final = frozenset({"earliest", "_index_earliest"})

# Dashboard tokens: $name$, $global_time.earliest$, $form.host|s$; opaque words to the checker.
_VAR = re.compile(r"\$[\w.:|-]+\$")
_KEY_OP = re.compile(r"([A-Za-z_][\w.]*)(::|!=|==|=)(.*)", re.DOTALL)
_BARE_KEY = re.compile(r"[A-Za-z_][\w.]*")
_OP_VALUE = re.compile(r"(::|!=|==|=)(.*)", re.DOTALL)
_OPTION = re.compile(r"\w+=.*", re.DOTALL)
_MACRO_CALL = re.compile(r"\s*([\w.:-]+)\s*(?:\((.*)\))?\s*", re.DOTALL)
_FROM_LOOKUP = re.compile(r"(?:input)?lookup:(.+)", re.DOTALL)
_MACRO_STANZA = re.compile(r"(.+?)\s*\(\s*(\d+)\s*\)")
# A .conf line continuation as TABConfigParser keeps it: backslash, optional blanks, newline.
_CONTINUATION = re.compile(r"\\(?=[ \t]*\r?\n)")
_Kind = Literal["word", "string", "macro", "var", "pipe", "lbrack", "rbrack", "lparen", "rparen"]
_WORD_STOP: Final = frozenset(' \t\r\n\f\v"`|[]()')
_SINGLE: Final[dict[str, _Kind]] = {
    "|": "pipe",
    "[": "lbrack",
    "]": "rbrack",
    "(": "lparen",
    ")": "rparen",
}


# --- public API -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a search: a stable `code` for tests, a `message` for people."""

    code: str
    message: str


@dataclass(frozen=True)
class Validation:
    """A macro's `validation` eval expression and the argument names it may refer to."""

    args: tuple[str, ...]
    expression: str


@dataclass(frozen=True)
class Knowledge:
    """What the app defines, so references to undefined knowledge objects can be caught."""

    macros: Mapping[str, int]
    lookups: frozenset[str]
    eventtypes: frozenset[str]
    validations: Mapping[str, Validation] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_app(cls, app_dir: Path) -> Knowledge:
        """Macros (name -> arity, validations), lookup definitions and files, eventtypes."""
        default = app_dir / "default"
        parser = _read_conf(default / "macros.conf")
        macros: dict[str, int] = {}
        validations: dict[str, Validation] = {}
        for stanza in _stanzas(default / "macros.conf"):
            name, arity = _macro_signature(stanza)
            macros[name] = arity
            if expression := parser.get(stanza, "validation", fallback="").strip():
                args = parser.get(stanza, "args", fallback="").split(",")
                validations[name] = Validation(tuple(a.strip() for a in args), expression)
        lookups = set(_stanzas(default / "transforms.conf"))
        lookups.update(p.name for p in (app_dir / "lookups").glob("*.csv") if p.is_file())
        return cls(
            macros=MappingProxyType(macros),
            lookups=frozenset(lookups),
            eventtypes=frozenset(_stanzas(default / "eventtypes.conf")),
            validations=MappingProxyType(validations),
        )


def check_search(
    spl: str,
    knowledge: Knowledge,
    *,
    allow_index: bool = False,
    require_time_bound: bool = False,
    fragment: bool = False,
) -> list[Problem]:
    """Every structural problem of one search, in the order they appear.

    `fragment=True` is for text spliced into another search (macro definitions, chain
    searches): a leading `|` need not be followed by a generating command.
    """
    checker = _Checker(normalise(spl), knowledge, allow_index=allow_index, fragment=fragment)
    checker.run(require_time_bound=require_time_bound)
    return checker.problems()


def normalise(spl: str) -> str:
    """Blank out .conf backslash-newline continuations, keeping every offset unchanged."""
    return _CONTINUATION.sub(" ", spl)


def check_app(app_dir: Path) -> dict[str, list[Problem]]:
    """Check every search an app ships; maps a label per search to its problems.

    Every search checked gets a key, with an empty list when it is clean, so callers can see
    what was covered. Labels look like "savedsearches.conf [Name]" or "views/x.xml [ds_id]".
    """
    try:
        knowledge = Knowledge.from_app(app_dir)
    except configparser.Error as error:
        return {"knowledge": [Problem("bad-conf", f"a .conf file does not parse: {error}")]}
    results: dict[str, list[Problem]] = {}
    default = app_dir / "default"
    checks = {
        "macros.conf": _check_macros,
        "savedsearches.conf": _check_savedsearches,
        "eventtypes.conf": _check_eventtypes,
    }
    for name, check in checks.items():
        try:
            check(default / name, knowledge, results)
        except configparser.Error as error:
            results[name] = [Problem("bad-conf", f"{name} does not parse: {error}")]
    for view in sorted((default / "data" / "ui" / "views").glob("*.xml")):
        _check_view(view, knowledge, results)
    return results


# --- lexing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    kind: _Kind
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class _Found:
    pos: int
    code: str
    message: str


@dataclass
class _Sub:
    """A subsearch `[ ... ]` and the pipeline inside it."""

    open: _Token
    stages: list[_Stage]


@dataclass
class _Stage:
    """One pipeline stage; `pipe` is the `|` before it (None for a pipeline's first stage)."""

    pipe: _Token | None
    items: list[_Token | _Sub] = field(default_factory=list)

    def tokens(self) -> list[_Token]:
        return [item for item in self.items if isinstance(item, _Token)]


def _where(spl: str, pos: int) -> str:
    line = spl.count("\n", 0, pos) + 1
    column = pos - (spl.rfind("\n", 0, pos) + 1) + 1
    return f"line {line}, column {column}"


def _string_end(spl: str, start: int, stop: int) -> int | None:
    """End (exclusive) of the quoted string opening at `start`; backslash escapes any char."""
    i = start + 1
    while i < stop:
        char = spl[i]
        if char == "\\":
            i += 2
        elif char == '"':
            return i + 1
        else:
            i += 1
    return None


class _Lexer:
    """Splits SPL into tokens. Backslash escapes the next character in and out of quotes."""

    def __init__(self, spl: str, start: int, stop: int) -> None:
        self.spl = spl
        self.stop = stop
        self.pos = start
        self.tokens: list[_Token] = []
        self.found: list[_Found] = []

    def _add(self, pos: int, code: str, message: str) -> None:
        self.found.append(_Found(pos, code, f"{message} at {_where(self.spl, pos)}"))

    def run(self) -> _Lexer:
        spl, stop = self.spl, self.stop
        while self.pos < stop:
            i = self.pos
            char = spl[i]
            if char.isspace():
                self.pos += 1
            elif char == '"':
                self._string(i)
            elif spl.startswith("```", i) and i + 3 <= stop:
                close = spl.find("```", i + 3, stop)
                if close < 0:
                    self._add(i, "unbalanced-backtick", "comment ``` is never closed")
                    self.pos = stop
                else:
                    self.pos = close + 3
            elif char == "`":
                self._macro(i)
            elif char in _SINGLE:
                self.tokens.append(_Token(_SINGLE[char], char, i, i + 1))
                self.pos += 1
            elif var := _VAR.match(spl, i, stop):
                self.tokens.append(_Token("var", var.group(), i, var.end()))
                self.pos = var.end()
            else:
                self._word(i)
        return self

    def _string(self, i: int) -> None:
        end = _string_end(self.spl, i, self.stop)
        if end is None:
            self._add(i, "unbalanced-quote", 'quote " is never closed')
            end = self.stop
        self.tokens.append(_Token("string", self.spl[i:end], i, end))
        self.pos = end

    def _macro(self, i: int) -> None:
        spl, j = self.spl, i + 1
        while j < self.stop:
            char = spl[j]
            if char == "`":
                self.tokens.append(_Token("macro", spl[i : j + 1], i, j + 1))
                self.pos = j + 1
                return
            if char == '"':
                end = _string_end(spl, j, self.stop)
                if end is None:
                    self._add(j, "unbalanced-quote", 'quote " in a macro call is never closed')
                    break
                j = end
            else:
                j += 2 if char == "\\" else 1
        self._add(i, "unbalanced-backtick", "macro call backtick ` is never closed")
        self.pos = self.stop

    def _word(self, i: int) -> None:
        spl, j = self.spl, i
        while j < self.stop:
            char = spl[j]
            if char in _WORD_STOP or (char == "$" and j > i and _VAR.match(spl, j, self.stop)):
                break
            j += 2 if char == "\\" else 1
        j = min(j, self.stop)
        self.tokens.append(_Token("word", spl[i:j], i, j))
        self.pos = j


def _parse(
    tokens: Sequence[_Token], pos: int, depth: int, add: Callable[[int, str, str], None]
) -> tuple[list[_Stage], int]:
    """Stages of the pipeline starting at `pos`, up to (not past) the `]` that closes it."""
    stages = [_Stage(None)]
    while pos < len(tokens):
        token = tokens[pos]
        if token.kind == "pipe":
            stages.append(_Stage(token))
            pos += 1
        elif token.kind == "lbrack":
            inner, pos = _parse(tokens, pos + 1, depth + 1, add)
            if pos < len(tokens):
                pos += 1  # the closing ]
            else:
                add(token.start, "unbalanced-bracket", "subsearch [ is never closed")
            stages[-1].items.append(_Sub(token, inner))
        elif token.kind == "rbrack":
            if depth:
                return stages, pos
            add(token.start, "unbalanced-bracket", "] closes no subsearch")
            pos += 1
        else:
            stages[-1].items.append(token)
            pos += 1
    return stages, pos


def _unquote(text: str) -> str:
    inner = text[1:-1] if len(text) >= 2 and text.endswith('"') else text[1:]
    return re.sub(r"\\(.)", r"\1", inner, flags=re.DOTALL)


def _glued(tokens: Sequence[_Token], i: int) -> list[_Token]:
    """The run of tokens from `i` with no whitespace between them (one SPL word)."""
    run = [tokens[i]]
    while i + 1 < len(tokens) and tokens[i + 1].start == tokens[i].end:
        i += 1
        run.append(tokens[i])
    return run


def _glued_text(run: Sequence[_Token]) -> str | None:
    """A word's literal text, or None when part of it is a macro or a dashboard token."""
    parts: list[str] = []
    for token in run:
        if token.kind in ("macro", "var"):
            return None
        if token.kind not in ("word", "string"):
            break
        parts.append(_unquote(token.text) if token.kind == "string" else token.text)
    return "".join(parts)


def _terms(tokens: Sequence[_Token]) -> Iterator[tuple[str, str, _Token, str | None]]:
    """(key, operator, key token, value) of each `key=value`, `key = value`, `key::value`.

    The value is None when it is built from a macro or a dashboard token (cannot be judged).
    """
    for i, token in enumerate(tokens):
        if token.kind != "word":
            continue
        if match := _KEY_OP.fullmatch(token.text):
            key, op, rest, after = match.group(1), match.group(2), match.group(3), i + 1
        elif _BARE_KEY.fullmatch(token.text) and i + 1 < len(tokens):
            nxt = tokens[i + 1]
            found = _OP_VALUE.fullmatch(nxt.text) if nxt.kind == "word" else None
            if found is None:
                continue
            key, op, rest, after = token.text, found.group(1), found.group(2), i + 2
        else:
            continue
        glued_after = after < len(tokens) and tokens[after].start == tokens[after - 1].end
        if rest:
            tail = _glued_text(_glued(tokens, after)) if glued_after else ""
            yield key, op, token, None if tail is None else rest + tail
        elif after < len(tokens) and tokens[after].kind in ("word", "string", "macro", "var"):
            yield key, op, token, _glued_text(_glued(tokens, after))
        else:
            yield key, op, token, ""


def _split_args(spl: str, start: int, stop: int) -> list[tuple[str, int]]:
    """Macro arguments between `start` and `stop`: split on commas outside quotes."""
    args: list[tuple[str, int]] = []
    begin, i = start, start
    while i < stop:
        char = spl[i]
        if char == '"':
            i = _string_end(spl, i, stop) or stop
        elif char == "\\":
            i += 2
        elif char == ",":
            args.append((spl[begin:i], begin))
            begin = i = i + 1
        else:
            i += 1
    args.append((spl[begin:stop], begin))
    return args


# --- checking -------------------------------------------------------------------------------------


class _Checker:
    """Walks one search's pipelines, collecting problems with their positions."""

    def __init__(
        self, spl: str, knowledge: Knowledge, *, allow_index: bool, fragment: bool
    ) -> None:
        self.spl = spl
        self.knowledge = knowledge
        self.allow_index = allow_index
        self.fragment = fragment
        self.found: list[_Found] = []

    def add(self, pos: int, code: str, message: str) -> None:
        self.found.append(_Found(pos, code, f"{message} at {_where(self.spl, pos)}"))

    def problems(self) -> list[Problem]:
        seen: dict[tuple[str, str], None] = {}
        for item in sorted(self.found, key=lambda f: f.pos):
            seen.setdefault((item.code, item.message), None)
        return [Problem(code, message) for code, message in seen]

    def run(self, *, require_time_bound: bool) -> None:
        lexer = _Lexer(self.spl, 0, len(self.spl)).run()
        self.found.extend(lexer.found)
        stages, _ = _parse(lexer.tokens, 0, 0, self.add)
        self.pipeline(stages, parent=None, opener=None)
        if require_time_bound and not _bounds_time(stages, top=True):
            self.add(
                0,
                "not-time-bounded",
                "search sets no earliest= of its own (it runs without a time picker)",
            )

    # -- pipelines and stages --

    def pipeline(self, stages: list[_Stage], *, parent: str | None, opener: _Token | None) -> None:
        """`parent` is the command holding this subsearch; None for the whole search."""
        if len(stages) == 1 and not stages[0].items:
            if opener is None:
                if not self.spl.strip():  # else an unclosed quote or backtick ate the rest
                    self.add(0, "empty-search", "search is empty")
            else:
                self.add(opener.start, "empty-search", "subsearch [ ] is empty")
            return
        leading = not stages[0].items
        first = 1 if leading else 0
        for index, stage in enumerate(stages):
            if index < first:
                continue
            if not stage.items:
                # Only a pipeline's first stage lacks a pipe, and it is never checked here.
                pos = stage.pipe.start if stage.pipe else 0
                self.add(pos, "empty-pipe", "| is followed by no command")
                continue
            if index == 0 and parent is None:
                command = "search"  # the implicit search of a search's first stage
            else:
                generating = index == first and (
                    parent not in _SUBPIPELINE_PARENTS if parent else not self.fragment
                )
                command = self.command(
                    stage, generating=generating, opens_subsearch=index == 0 and parent is not None
                )
            self.stage(stage, command)

    def command(self, stage: _Stage, *, generating: bool, opens_subsearch: bool) -> str:
        """The stage's command name ("" when a macro or token stands for it)."""
        head = stage.items[0]
        if isinstance(head, _Sub):
            self.add(head.open.start, "unknown-command", "a subsearch [ cannot be a command")
            return ""
        if head.kind in ("macro", "var"):
            return ""
        name = head.text
        if head.kind != "word" or name not in COMMANDS:
            hint = ""
            if name.lower() in COMMANDS:
                hint = f"; commands are lowercase: {name.lower()!r}"
            elif close := difflib.get_close_matches(name, COMMANDS, n=1):
                hint = f"; did you mean {close[0]!r}?"
            elif opens_subsearch:
                hint = "; a subsearch starts with a command, as in [search ...]"
            self.add(head.start, "unknown-command", f"{name!r} is not a search command{hint}")
            return ""
        if generating and name not in GENERATING:
            self.add(
                head.start,
                "not-generating",
                f"{name!r} generates no events: first in a search, it has nothing to work on",
            )
        return name

    def stage(self, stage: _Stage, command: str) -> None:
        tokens = stage.tokens()
        self.parens(tokens)
        self.terms(tokens, assigns=command in _ASSIGNING)
        for token in tokens:
            if token.kind == "macro":
                self.macro(token)
        if command in _LOOKUP_COMMANDS:
            self.lookup(stage, command)
        elif command == "from" and len(tokens) > 1:
            match = _FROM_LOOKUP.fullmatch(tokens[1].text)
            if match and tokens[1].kind == "word":
                self.known_lookup(match.group(1), tokens[1])
        for item in stage.items:
            if isinstance(item, _Sub):
                self.pipeline(item.stages, parent=command or "search", opener=item.open)

    def parens(self, tokens: Sequence[_Token]) -> None:
        """Parentheses balance within each stage (a `|` never sits inside an expression)."""
        open_parens: list[_Token] = []
        for token in tokens:
            if token.kind == "lparen":
                open_parens.append(token)
            elif token.kind == "rparen":
                if open_parens:
                    open_parens.pop()
                else:
                    self.add(token.start, "unbalanced-paren", ") closes nothing")
        for token in open_parens:
            self.add(token.start, "unbalanced-paren", "( is never closed in its pipeline stage")

    def terms(self, tokens: Sequence[_Token], *, assigns: bool = False) -> None:
        """Index and eventtype terms; `assigns` for eval, where `eventtype=` sets a field."""
        for i, token in enumerate(tokens):
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if (
                not self.allow_index
                and token.kind == "word"
                and token.text.lower() == "index"
                and nxt is not None
                and nxt.text.lower() == "in"
            ):
                self.add(token.start, "hardcoded-index", "'index IN' names indexes directly")
        for key, op, token, value in _terms(tokens):
            # Field names are case-sensitive (eventType is not eventtype); any case of index
            # is flagged all the same, to be safe.
            if key.lower() == "index" and not self.allow_index:
                term = f"{key}{op}{'…' if value is None else value}"
                self.add(
                    token.start,
                    "hardcoded-index",
                    f"{term!r} names an index; use the `iot_defender_index` macro",
                )
            elif key == "eventtype" and value is not None and not assigns:
                self.known_eventtype(value, token)

    def known_eventtype(self, name: str, token: _Token) -> None:
        known = self.knowledge.eventtypes
        if not name:
            self.add(token.start, "undefined-eventtype", "eventtype= names no eventtype")
        elif not (fnmatch.filter(known, name) if "*" in name else name in known):
            self.add(token.start, "undefined-eventtype", f"eventtype {name!r} is not defined")

    def macro(self, token: _Token) -> None:
        start, stop = token.start + 1, token.end - 1
        call = _MACRO_CALL.fullmatch(self.spl, start, stop)
        if call is None:
            self.add(token.start, "bad-macro-call", f"{token.text!r} is not a macro call")
            return
        name = call.group(1)
        args: list[tuple[str, int]] = []
        if call.group(2) is not None and call.group(2).strip():
            args = _split_args(self.spl, call.start(2), call.end(2))
        for text, begin in args:
            if not text.strip():
                self.add(begin, "macro-arity", f"macro `{name}` has an empty argument")
            # An argument is SPL too: hard-coded indexes and eventtypes hide there as well.
            lexer = _Lexer(self.spl, begin, begin + len(text)).run()
            self.terms(lexer.tokens)
        if name not in self.knowledge.macros:
            self.add(token.start, "undefined-macro", f"macro `{name}` is not defined")
            return
        arity = self.knowledge.macros[name]
        if arity != len(args):
            self.add(
                token.start,
                "macro-arity",
                f"macro `{name}` takes {arity} argument(s), called with {len(args)}",
            )
            return
        validation = self.knowledge.validations.get(name)
        values = [text.strip() for text, _ in args]
        if validation is None or any(_VAR.search(value) for value in values):
            return  # no validation, or dashboard tokens only known when the dashboard runs
        for reading, verdict in validation_verdicts(validation, values).items():
            if verdict is not True:
                self.add(
                    token.start,
                    "macro-validation",
                    f"{token.text} fails the validation {validation.expression!r} {reading}"
                    f" ({verdict})",
                )

    def lookup(self, stage: _Stage, command: str) -> None:
        """`lookup`/`inputlookup`/`outputlookup [option=value ...] <name>`."""
        tokens = stage.tokens()
        i = 1
        while i < len(tokens) and tokens[i].kind == "word" and _OPTION.fullmatch(tokens[i].text):
            i += 2 if tokens[i].text.endswith("=") else 1
        if i >= len(tokens) or tokens[i].kind not in ("word", "string", "macro", "var"):
            self.add(tokens[0].start, "undefined-lookup", f"{command!r} names no lookup")
            return
        name = _glued_text(_glued(tokens, i))
        if name is not None:
            self.known_lookup(name, tokens[i])

    def known_lookup(self, name: str, token: _Token) -> None:
        if name not in self.knowledge.lookups:
            self.add(token.start, "undefined-lookup", f"lookup {name!r} is not defined")


def _bounds_time(stages: list[_Stage], *, top: bool = False) -> bool:
    """Whether the pipeline's first command limits time itself (earliest=, or UNTIMED)."""
    leading = not stages[0].items
    if leading and len(stages) == 1:
        return False
    stage = stages[1] if leading else stages[0]
    tokens = stage.tokens()
    command = "search" if top and not leading else (tokens[0].text if tokens else "")
    if command in UNTIMED:
        return True
    if any(key.lower() in _TIME_KEYS for key, _, _, _ in _terms(tokens)):
        return True
    subs = [item for item in stage.items if isinstance(item, _Sub)]
    return (
        command in ("multisearch", "union")
        and bool(subs)
        and all(_bounds_time(sub.stages) for sub in subs)
    )


# --- macro validation expressions ----------------------------------------------------------------

# How a validation expression sees a macro's arguments. The documentation reads both ways:
# macros.conf.example writes bare argument names (`validation = foo > bar`), the Knowledge
# Manager manual writes tokens (`isnum($arg$)`). An expression must pass under either reading.
BINDS_NAMES: Final = "if Splunk binds the argument names to the values"
SUBSTITUTES: Final = "if Splunk substitutes $arg$ tokens before evaluating it"
_EVAL_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<name>[A-Za-z_]\w*)|(?P<punct>[(),]))'
)
_EvalValue = str | bool | None


class _UnreadableEvalError(ValueError):
    """An eval expression outside the small subset validations are checked in."""


def _coalesce(values: list[_EvalValue]) -> _EvalValue:
    return next((value for value in values if value is not None), None)


def _match(values: list[_EvalValue]) -> _EvalValue:
    if len(values) != 2:
        raise _UnreadableEvalError("match() takes two arguments")
    subject, regex = values
    if subject is None:
        return None
    try:
        return re.search(str(regex), str(subject)) is not None
    except re.error as error:
        raise _UnreadableEvalError(f"match() regex {regex!r}: {error}") from error


_EVAL_FUNCTIONS: Final[dict[str, Callable[[list[_EvalValue]], _EvalValue]]] = {
    "coalesce": _coalesce,
    "match": _match,
}


def validation_verdicts(validation: Validation, values: Sequence[str]) -> dict[str, object]:
    """Each reading -> the expression's value for these arguments (True means valid), or why
    it cannot be evaluated. Only string literals, argument names, match() and coalesce() are
    understood; anything else is reported as unreadable, never passed."""
    bound = dict(zip(validation.args, values, strict=True))
    substituted = validation.expression
    for name, value in bound.items():
        substituted = substituted.replace(f"${name}$", value)
    verdicts: dict[str, object] = {}
    for reading, text, names in (
        (BINDS_NAMES, validation.expression, bound),
        (SUBSTITUTES, substituted, {}),
    ):
        try:
            verdicts[reading] = _evaluate(text, names)
        except _UnreadableEvalError as error:
            verdicts[reading] = f"unreadable: {error}"
    return verdicts


def _evaluate(text: str, names: Mapping[str, str]) -> _EvalValue:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text.rstrip()):
        match = _EVAL_TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:
            raise _UnreadableEvalError(f"cannot read {text[pos:]!r}")
        tokens.append((match.lastgroup, match.group(match.lastgroup)))
        pos = match.end()
    value, rest = _expression(tokens, names)
    if rest:
        raise _UnreadableEvalError(f"unexpected {rest[0][1]!r}")
    return value


def _expression(
    tokens: list[tuple[str, str]], names: Mapping[str, str]
) -> tuple[_EvalValue, list[tuple[str, str]]]:
    """One expression from the front of `tokens`, and the tokens after it."""
    if not tokens:
        raise _UnreadableEvalError("the expression ends too early")
    (kind, text), rest = tokens[0], tokens[1:]
    if kind == "string":
        return re.sub(r"\\(.)", r"\1", text[1:-1]), rest
    if kind != "name":
        raise _UnreadableEvalError(f"unexpected {text!r}")
    if not rest or rest[0][1] != "(":
        return names.get(text), rest  # a field: the argument's value, or null
    function = _EVAL_FUNCTIONS.get(text)
    if function is None:
        raise _UnreadableEvalError(f"{text}() is not checked offline")
    values: list[_EvalValue] = []
    rest = rest[1:]
    while True:
        value, rest = _expression(rest, names)
        values.append(value)
        if not rest or rest[0][1] not in ",)":
            raise _UnreadableEvalError(f"{text}() is not closed")
        separator, rest = rest[0][1], rest[1:]
        if separator == ")":
            return function(values), rest


# --- the app's files ------------------------------------------------------------------------------


def _read_conf(path: Path) -> configparser.RawConfigParser:
    parser: configparser.RawConfigParser = TABConfigParser()
    if path.is_file():
        parser.read(path, encoding="utf-8")
    return parser


def _stanzas(path: Path) -> list[str]:
    return [s for s in _read_conf(path).sections() if s.strip().lower() != "default"]


def _macro_signature(stanza: str) -> tuple[str, int]:
    """`name(2)` -> ("name", 2); `name` -> ("name", 0)."""
    match = _MACRO_STANZA.fullmatch(stanza.strip())
    return (match.group(1), int(match.group(2))) if match else (stanza.strip(), 0)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "t", "yes", "y")


def _check_macros(path: Path, knowledge: Knowledge, results: dict[str, list[Problem]]) -> None:
    parser = _read_conf(path)
    names: dict[str, str] = {}
    for stanza in _stanzas(path):
        label = f"macros.conf [{stanza}]"
        name, arity = _macro_signature(stanza)
        definition = parser.get(stanza, "definition", fallback="")
        if _truthy(parser.get(stanza, "iseval", fallback=None)):
            # An eval expression that builds SPL: only its quoting and nesting can be judged.
            problems = _balance_only(definition)
        else:
            problems = check_search(
                definition,
                knowledge,
                allow_index=name == "iot_defender_index",
                fragment=True,
            )
        declared = [a.strip() for a in parser.get(stanza, "args", fallback="").split(",")]
        declared = [a for a in declared if a]
        if len(declared) != arity:
            problems.append(
                Problem(
                    "macro-arity",
                    f"macro {stanza!r} takes {arity} argument(s) but args lists {len(declared)}",
                )
            )
        for var in sorted({v.strip("$") for v in _VAR.findall(normalise(definition))}):
            if var not in declared:
                problems.append(
                    Problem("undefined-macro-arg", f"${var}$ in {stanza!r} is not one of its args")
                )
        if name in names:
            problems.append(
                Problem(
                    "overloaded-macro",
                    f"{stanza!r} overloads {names[name]!r}; the checker knows one arity per name",
                )
            )
        names[name] = stanza
        results[label] = problems


def _balance_only(spl: str) -> list[Problem]:
    """Quote, backtick, bracket and paren balance of text that is not itself a search."""
    text = normalise(spl)
    lexer = _Lexer(text, 0, len(text)).run()
    found = list(lexer.found)
    depth: list[_Token] = []
    pairs = {"rparen": "lparen", "rbrack": "lbrack"}
    for token in lexer.tokens:
        if token.kind in ("lparen", "lbrack"):
            depth.append(token)
        elif token.kind in pairs:
            if depth and depth[-1].kind == pairs[token.kind]:
                depth.pop()
            else:
                code = "unbalanced-paren" if token.kind == "rparen" else "unbalanced-bracket"
                where = _where(text, token.start)
                found.append(_Found(token.start, code, f"{token.text} is unmatched at {where}"))
    for token in depth:
        code = "unbalanced-paren" if token.kind == "lparen" else "unbalanced-bracket"
        where = _where(text, token.start)
        found.append(_Found(token.start, code, f"{token.text} is never closed at {where}"))
    return [Problem(f.code, f.message) for f in sorted(found, key=lambda f: f.pos)]


def _check_savedsearches(
    path: Path, knowledge: Knowledge, results: dict[str, list[Problem]]
) -> None:
    parser = _read_conf(path)

    def setting(stanza: str, key: str) -> str:
        """A stanza's setting, else the one its [default] stanza gives every stanza."""
        for section in (stanza, "default"):
            if parser.has_option(section, key):
                return parser.get(section, key)
        return ""

    for stanza in _stanzas(path):
        if not parser.has_option(stanza, "search"):
            continue
        # A scheduled search has no time picker: it needs dispatch.earliest_time or earliest=.
        scheduled = _truthy(setting(stanza, "enableSched"))
        bounded = bool(setting(stanza, "dispatch.earliest_time").strip())
        results[f"savedsearches.conf [{stanza}]"] = check_search(
            parser.get(stanza, "search"),
            knowledge,
            require_time_bound=scheduled and not bounded,
        )


def _check_eventtypes(path: Path, knowledge: Knowledge, results: dict[str, list[Problem]]) -> None:
    parser = _read_conf(path)
    for stanza in _stanzas(path):
        spl = parser.get(stanza, "search", fallback="")
        problems = check_search(spl, knowledge)
        lexer = _Lexer(normalise(spl), 0, len(spl)).run()
        for token in lexer.tokens:
            if token.kind in ("pipe", "lbrack"):
                problems.append(
                    Problem(
                        "eventtype-not-terms",
                        f"eventtype {stanza!r} has {token.text!r} at "
                        f"{_where(spl, token.start)}: an eventtype is search terms only",
                    )
                )
        results[f"eventtypes.conf [{stanza}]"] = problems


def _check_view(path: Path, knowledge: Knowledge, results: dict[str, list[Problem]]) -> None:
    label = f"views/{path.name}"
    try:
        # The app's own source files, not untrusted input.
        root = ET.parse(path).getroot()  # noqa: S314
    except ET.ParseError as error:
        results[label] = [Problem("bad-view", f"{path.name} is not well-formed XML: {error}")]
        return
    definition = root.find("definition")
    if definition is None:
        # Simple XML: <search><query>; a search with base= is a post-process fragment.
        for number, search in enumerate(root.iter("search"), start=1):
            query = search.findtext("query")
            if query is not None:
                results[f"{label} [search {number}]"] = check_search(
                    query, knowledge, fragment="base" in search.attrib
                )
        return
    try:
        studio = json.loads(definition.text or "")
    except ValueError as error:
        results[label] = [Problem("bad-view", f"{path.name}: definition is not JSON: {error}")]
        return
    sources = studio.get("dataSources") if isinstance(studio, dict) else None
    if not isinstance(sources, dict):
        results[label] = [Problem("bad-view", f"{path.name}: definition has no dataSources")]
        return
    for source_id, source in sorted(sources.items()):
        kind = source.get("type") if isinstance(source, dict) else None
        if kind not in ("ds.search", "ds.chain"):
            continue
        options = source.get("options")
        query = options.get("query") if isinstance(options, dict) else None
        key = f"{label} [{source_id}]"
        if not isinstance(query, str):
            results[key] = [Problem("empty-search", f"{kind} {source_id!r} has no query")]
            continue
        results[key] = check_search(query, knowledge, fragment=kind == "ds.chain")


# --- command line ---------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m appbuild.spl_check", description="Check every search a Splunk app ships."
    )
    parser.add_argument("app_dir", type=Path, help="the app directory (holds default/)")
    args = parser.parse_args(argv)
    app_dir: Path = args.app_dir
    if not (app_dir / "default").is_dir():
        print(f"{app_dir}: no default/ directory, not a Splunk app", file=sys.stderr)
        return 2
    results = check_app(app_dir)
    count = 0
    for label, problems in results.items():
        for problem in problems:
            count += 1
            print(f"{label}: {problem.code}: {problem.message}")
    print(f"{len(results)} searches checked, {count} problem(s)")
    return 1 if count else 0


if __name__ == "__main__":
    sys.exit(main())
