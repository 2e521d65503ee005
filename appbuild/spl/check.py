"""Offline structural checks for the SPL that the Splunk app ships.

It cannot tell whether a search finds the right events; it catches the mistakes that make Splunk
reject a search or quietly search the wrong data: unbalanced quotes, parentheses, brackets and
backticks, empty pipeline stages, misspelt commands, macros, lookups and eventtypes the app does
not define, macro arguments their macro's validation rejects, hard-coded indexes, and
scheduled searches with no time bound of their own.

`python -m appbuild.spl.check APP_DIR` checks every search the app ships and exits 1 on a
problem; `make package` runs it on the built app.
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from appbuild.spl.knowledge import Knowledge, macro_stanza, read_conf, stanzas, truthy
from appbuild.spl.lexer import (
    VAR,
    Found,
    Stage,
    Sub,
    Token,
    glued,
    glued_text,
    lex,
    macro_call,
    normalise,
    parse,
    where,
)
from appbuild.spl.validation import validation_verdicts

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

_KEY_OP = re.compile(r"([A-Za-z_][\w.]*)(::|!=|==|=)(.*)", re.DOTALL)
_BARE_KEY = re.compile(r"[A-Za-z_][\w.]*")
_OP_VALUE = re.compile(r"(::|!=|==|=)(.*)", re.DOTALL)
_OPTION = re.compile(r"\w+=.*", re.DOTALL)
_FROM_LOOKUP = re.compile(r"(?:input)?lookup:(.+)", re.DOTALL)


# --- public API ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a search: a stable `code` for tests, a `message` for people."""

    code: str
    message: str


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


def _terms(tokens: Sequence[Token]) -> Iterator[tuple[str, str, Token, str | None]]:
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
            tail = glued_text(glued(tokens, after)) if glued_after else ""
            yield key, op, token, None if tail is None else rest + tail
        elif after < len(tokens) and tokens[after].kind in ("word", "string", "macro", "var"):
            yield key, op, token, glued_text(glued(tokens, after))
        else:
            yield key, op, token, ""


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
        self.found: list[Found] = []

    def add(self, pos: int, code: str, message: str) -> None:
        self.found.append(Found(pos, code, f"{message} at {where(self.spl, pos)}"))

    def problems(self) -> list[Problem]:
        seen: dict[tuple[str, str], None] = {}
        for item in sorted(self.found, key=lambda f: f.pos):
            seen.setdefault((item.code, item.message), None)
        return [Problem(code, message) for code, message in seen]

    def run(self, *, require_time_bound: bool) -> None:
        lexed = lex(self.spl)
        self.found.extend(lexed.found)
        stages, _ = parse(lexed.tokens, self.add)
        self.pipeline(stages, parent=None, opener=None)
        if require_time_bound and not _bounds_time(stages, top=True):
            self.add(
                0,
                "not-time-bounded",
                "search sets no earliest= of its own (it runs without a time picker)",
            )

    # -- pipelines and stages --

    def pipeline(self, stages: list[Stage], *, parent: str | None, opener: Token | None) -> None:
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

    def command(self, stage: Stage, *, generating: bool, opens_subsearch: bool) -> str:
        """The stage's command name ("" when a macro or token stands for it)."""
        head = stage.items[0]
        if isinstance(head, Sub):
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

    def stage(self, stage: Stage, command: str) -> None:
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
            if isinstance(item, Sub):
                self.pipeline(item.stages, parent=command or "search", opener=item.open)

    def parens(self, tokens: Sequence[Token]) -> None:
        """Parentheses balance within each stage (a `|` never sits inside an expression)."""
        open_parens: list[Token] = []
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

    def terms(self, tokens: Sequence[Token], *, assigns: bool = False) -> None:
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

    def known_eventtype(self, name: str, token: Token) -> None:
        known = self.knowledge.eventtypes
        if not name:
            self.add(token.start, "undefined-eventtype", "eventtype= names no eventtype")
        elif not (fnmatch.filter(known, name) if "*" in name else name in known):
            self.add(token.start, "undefined-eventtype", f"eventtype {name!r} is not defined")

    def macro(self, token: Token) -> None:
        call = macro_call(token, self.spl)
        if call is None:
            self.add(token.start, "bad-macro-call", f"{token.text!r} is not a macro call")
            return
        name = call.name
        for text, begin in call.arguments:
            if not text.strip():
                self.add(begin, "macro-arity", f"macro `{name}` has an empty argument")
            # An argument is SPL too: hard-coded indexes and eventtypes hide there as well.
            self.terms(lex(self.spl, begin, begin + len(text)).tokens)
        macro = self.knowledge.macros.get(name)
        if macro is None:
            self.add(token.start, "undefined-macro", f"macro `{name}` is not defined")
            return
        if macro.arity != len(call.args):
            self.add(
                token.start,
                "macro-arity",
                f"macro `{name}` takes {macro.arity} argument(s), called with {len(call.args)}",
            )
            return
        values = list(call.args)
        if macro.validation is None or any(VAR.search(value) for value in values):
            return  # no validation, or dashboard tokens only known when the dashboard runs
        for reading, verdict in validation_verdicts(macro.validation, values).items():
            if verdict is not True:
                self.add(
                    token.start,
                    "macro-validation",
                    f"{token.text} fails the validation {macro.validation.expression!r}"
                    f" {reading} ({verdict})",
                )

    def lookup(self, stage: Stage, command: str) -> None:
        """`lookup`/`inputlookup`/`outputlookup [option=value ...] <name>`."""
        tokens = stage.tokens()
        i = 1
        while i < len(tokens) and tokens[i].kind == "word" and _OPTION.fullmatch(tokens[i].text):
            i += 2 if tokens[i].text.endswith("=") else 1
        if i >= len(tokens) or tokens[i].kind not in ("word", "string", "macro", "var"):
            self.add(tokens[0].start, "undefined-lookup", f"{command!r} names no lookup")
            return
        name = glued_text(glued(tokens, i))
        if name is not None:
            self.known_lookup(name, tokens[i])

    def known_lookup(self, name: str, token: Token) -> None:
        if name not in self.knowledge.lookups:
            self.add(token.start, "undefined-lookup", f"lookup {name!r} is not defined")


def _bounds_time(stages: list[Stage], *, top: bool = False) -> bool:
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
    subs = [item for item in stage.items if isinstance(item, Sub)]
    return (
        command in ("multisearch", "union")
        and bool(subs)
        and all(_bounds_time(sub.stages) for sub in subs)
    )


# --- the app's files ------------------------------------------------------------------------------


def _check_macros(path: Path, knowledge: Knowledge, results: dict[str, list[Problem]]) -> None:
    parser = read_conf(path)
    names: dict[str, str] = {}
    for stanza in stanzas(parser):
        label = f"macros.conf [{stanza}]"
        name, macro = macro_stanza(parser, stanza)
        if macro.iseval:
            # An eval expression that builds SPL: only its quoting and nesting can be judged.
            problems = _balance_only(macro.definition)
        else:
            problems = check_search(
                macro.definition,
                knowledge,
                allow_index=name == "iot_defender_index",
                fragment=True,
            )
        if len(macro.args) != macro.arity:
            problems.append(
                Problem(
                    "macro-arity",
                    f"macro {stanza!r} takes {macro.arity} argument(s) but args lists "
                    f"{len(macro.args)}",
                )
            )
        for var in sorted({v.strip("$") for v in VAR.findall(normalise(macro.definition))}):
            if var not in macro.args:
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
    lexed = lex(text)
    found = list(lexed.found)
    depth: list[Token] = []
    pairs = {"rparen": "lparen", "rbrack": "lbrack"}
    for token in lexed.tokens:
        if token.kind in ("lparen", "lbrack"):
            depth.append(token)
        elif token.kind in pairs:
            if depth and depth[-1].kind == pairs[token.kind]:
                depth.pop()
            else:
                code = "unbalanced-paren" if token.kind == "rparen" else "unbalanced-bracket"
                at = where(text, token.start)
                found.append(Found(token.start, code, f"{token.text} is unmatched at {at}"))
    for token in depth:
        code = "unbalanced-paren" if token.kind == "lparen" else "unbalanced-bracket"
        at = where(text, token.start)
        found.append(Found(token.start, code, f"{token.text} is never closed at {at}"))
    return [Problem(f.code, f.message) for f in sorted(found, key=lambda f: f.pos)]


def _check_savedsearches(
    path: Path, knowledge: Knowledge, results: dict[str, list[Problem]]
) -> None:
    parser = read_conf(path)

    def setting(stanza: str, key: str) -> str:
        """A stanza's setting, else the one its [default] stanza gives every stanza."""
        for section in (stanza, "default"):
            if parser.has_option(section, key):
                return parser.get(section, key)
        return ""

    for stanza in stanzas(parser):
        if not parser.has_option(stanza, "search"):
            continue
        # A scheduled search has no time picker: it needs dispatch.earliest_time or earliest=.
        scheduled = truthy(setting(stanza, "enableSched"))
        bounded = bool(setting(stanza, "dispatch.earliest_time").strip())
        results[f"savedsearches.conf [{stanza}]"] = check_search(
            parser.get(stanza, "search"),
            knowledge,
            require_time_bound=scheduled and not bounded,
        )


def _check_eventtypes(path: Path, knowledge: Knowledge, results: dict[str, list[Problem]]) -> None:
    parser = read_conf(path)
    for stanza in stanzas(parser):
        spl = parser.get(stanza, "search", fallback="")
        problems = check_search(spl, knowledge)
        for token in lex(normalise(spl)).tokens:
            if token.kind in ("pipe", "lbrack"):
                problems.append(
                    Problem(
                        "eventtype-not-terms",
                        f"eventtype {stanza!r} has {token.text!r} at "
                        f"{where(spl, token.start)}: an eventtype is search terms only",
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
        prog="python -m appbuild.spl.check", description="Check every search a Splunk app ships."
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
