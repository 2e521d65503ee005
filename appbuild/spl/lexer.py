"""SPL as tokens and pipelines: the one reading of SPL text every other module builds on.

Backslash escapes the next character in and out of quotes; ```triple backticks``` open a
comment; a single backtick opens a macro call; `$name$` is a dashboard token, opaque here.
Problems (an unclosed quote, a stray `]`) are collected with their position, never raised, so
any text gets an answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

Kind = Literal["word", "string", "macro", "var", "pipe", "lbrack", "rbrack", "lparen", "rparen"]

# Dashboard tokens: $name$, $global_time.earliest$, $form.host|s$.
VAR: Final = re.compile(r"\$[\w.:|-]+\$")
# The inside of a macro call: a name, then optionally its arguments in parentheses.
MACRO_CALL: Final = re.compile(r"\s*([\w.:-]+)\s*(?:\((.*)\))?\s*", re.DOTALL)
# A .conf line continuation as TABConfigParser keeps it: backslash, optional blanks, newline.
_CONTINUATION = re.compile(r"\\(?=[ \t]*\r?\n)")
_WORD_STOP: Final = frozenset(' \t\r\n\f\v"`|[]()')
_SINGLE: Final[dict[str, Kind]] = {
    "|": "pipe",
    "[": "lbrack",
    "]": "rbrack",
    "(": "lparen",
    ")": "rparen",
}
_OPENERS: Final = frozenset("([")
_CLOSERS: Final = frozenset(")]")


@dataclass(frozen=True)
class Token:
    kind: Kind
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Found:
    """A problem at a position of the text: `code` for tests, `message` for people."""

    pos: int
    code: str
    message: str


@dataclass(frozen=True)
class Lexed:
    tokens: list[Token]
    found: list[Found]


@dataclass
class Sub:
    """A subsearch `[ ... ]` and the pipeline inside it."""

    open: Token
    stages: list[Stage]


@dataclass
class Stage:
    """One pipeline stage; `pipe` is the `|` before it (None for a pipeline's first stage)."""

    pipe: Token | None
    items: list[Token | Sub] = field(default_factory=list)

    def tokens(self) -> list[Token]:
        return [item for item in self.items if isinstance(item, Token)]


@dataclass(frozen=True)
class MacroCall:
    """One well-formed macro call: its name, and each argument as written with its offset."""

    name: str
    arguments: tuple[tuple[str, int], ...]
    token: Token

    @property
    def args(self) -> tuple[str, ...]:
        """The arguments' values, blanks around them left out."""
        return tuple(text.strip() for text, _ in self.arguments)


def normalise(spl: str) -> str:
    """Blank out .conf backslash-newline continuations, keeping every offset unchanged."""
    return _CONTINUATION.sub(" ", spl)


def where(spl: str, pos: int) -> str:
    """`line L, column C` of an offset, both counted from 1."""
    line = spl.count("\n", 0, pos) + 1
    column = pos - (spl.rfind("\n", 0, pos) + 1) + 1
    return f"line {line}, column {column}"


def string_end(spl: str, start: int, stop: int) -> int | None:
    """End (exclusive) of the quoted string opening at `start`; None when it never closes."""
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


def unquote(text: str) -> str:
    """A quoted string's value: quotes off, backslash escapes resolved."""
    inner = text[1:-1] if len(text) >= 2 and text.endswith('"') else text[1:]
    return re.sub(r"\\(.)", r"\1", inner, flags=re.DOTALL)


def lex(spl: str, start: int = 0, stop: int | None = None) -> Lexed:
    """The tokens of `spl[start:stop]` (offsets into `spl`) and the problems met on the way."""
    lexer = _Lexer(spl, start, len(spl) if stop is None else stop)
    lexer.run()
    return Lexed(lexer.tokens, lexer.found)


class _Lexer:
    def __init__(self, spl: str, start: int, stop: int) -> None:
        self.spl = spl
        self.stop = stop
        self.pos = start
        self.tokens: list[Token] = []
        self.found: list[Found] = []

    def _add(self, pos: int, code: str, message: str) -> None:
        self.found.append(Found(pos, code, f"{message} at {where(self.spl, pos)}"))

    def run(self) -> None:
        spl, stop = self.spl, self.stop
        while self.pos < stop:
            i = self.pos
            char = spl[i]
            if char.isspace():
                self.pos += 1
            elif char == '"':
                self._string(i)
            elif spl.startswith("```", i) and i + 3 <= stop:
                self._comment(i)
            elif char == "`":
                self._macro(i)
            elif char in _SINGLE:
                self.tokens.append(Token(_SINGLE[char], char, i, i + 1))
                self.pos += 1
            elif var := VAR.match(spl, i, stop):
                self.tokens.append(Token("var", var.group(), i, var.end()))
                self.pos = var.end()
            else:
                self._word(i)

    def _comment(self, i: int) -> None:
        close = self.spl.find("```", i + 3, self.stop)
        if close < 0:
            self._add(i, "unbalanced-backtick", "comment ``` is never closed")
            self.pos = self.stop
        else:
            self.pos = close + 3

    def _string(self, i: int) -> None:
        end = string_end(self.spl, i, self.stop)
        if end is None:
            self._add(i, "unbalanced-quote", 'quote " is never closed')
            end = self.stop
        self.tokens.append(Token("string", self.spl[i:end], i, end))
        self.pos = end

    def _macro(self, i: int) -> None:
        spl, j = self.spl, i + 1
        while j < self.stop:
            char = spl[j]
            if char == "`":
                self.tokens.append(Token("macro", spl[i : j + 1], i, j + 1))
                self.pos = j + 1
                return
            if char == '"':
                end = string_end(spl, j, self.stop)
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
            if char in _WORD_STOP or (char == "$" and j > i and VAR.match(spl, j, self.stop)):
                break
            j += 2 if char == "\\" else 1
        j = min(j, self.stop)
        self.tokens.append(Token("word", spl[i:j], i, j))
        self.pos = j


# --- pipelines ------------------------------------------------------------------------------------


def parse(
    tokens: Sequence[Token], add: Callable[[int, str, str], None], pos: int = 0, depth: int = 0
) -> tuple[list[Stage], int]:
    """Stages of the pipeline starting at `pos`, up to (not past) the `]` that closes it."""
    stages = [Stage(None)]
    while pos < len(tokens):
        token = tokens[pos]
        if token.kind == "pipe":
            stages.append(Stage(token))
            pos += 1
        elif token.kind == "lbrack":
            inner, pos = parse(tokens, add, pos + 1, depth + 1)
            if pos < len(tokens):
                pos += 1  # the closing ]
            else:
                add(token.start, "unbalanced-bracket", "subsearch [ is never closed")
            stages[-1].items.append(Sub(token, inner))
        elif token.kind == "rbrack":
            if depth:
                return stages, pos
            add(token.start, "unbalanced-bracket", "] closes no subsearch")
            pos += 1
        else:
            stages[-1].items.append(token)
            pos += 1
    return stages, pos


def stages(spl: str) -> list[str]:
    """The text of each stage of the top-level pipeline, whitespace collapsed, empty ones left
    out: pipes inside quotes, comments, macro calls and subsearches do not split."""
    text = normalise(spl)
    top, _ = parse(lex(text).tokens, lambda pos, code, message: None)
    cuts = [stage.pipe for stage in top[1:] if stage.pipe is not None]
    starts = [0, *(pipe.end for pipe in cuts)]
    bounds = zip(starts, [*(pipe.start for pipe in cuts), len(text)], strict=True)
    parts = (" ".join(text[start:end].split()) for start, end in bounds)
    return [part for part in parts if part]


# --- words, arguments, macro calls ----------------------------------------------------------------


def split_args(spl: str, start: int, stop: int) -> list[tuple[str, int]]:
    """(text, offset) of each part of `spl[start:stop]` between top-level commas."""
    return _split(spl, ",", start, stop)


def split_outside(text: str, separators: str) -> list[str]:
    """`text` cut at every separator character outside quotes, parentheses, brackets and macro
    calls; empty parts are kept, so joining the parts with the separator gives `text` back."""
    return [part for part, _ in _split(text, separators, 0, len(text))]


def words(text: str) -> list[str]:
    """Whitespace-separated words, a quoted string or a parenthesised argument list whole."""
    return [part for part in split_outside(text, " \t\r\n") if part]


def _split(text: str, separators: str, start: int, stop: int) -> list[tuple[str, int]]:
    cuts = list(_separators_at(text, separators, start, stop))
    begins = [start, *(cut + 1 for cut in cuts)]
    ends = [*cuts, stop]
    return [(text[begin:end], begin) for begin, end in zip(begins, ends, strict=True)]


def _separators_at(text: str, separators: str, start: int, stop: int) -> Iterator[int]:
    depth, i = 0, start
    while i < stop:
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == '"':
            i = string_end(text, i, stop) or stop
            continue
        if char == "`":
            close = text.find("`", i + 1, stop)
            i = stop if close < 0 else close + 1
            continue
        if char in _OPENERS:
            depth += 1
        elif char in _CLOSERS:
            depth = max(depth - 1, 0)
        elif depth == 0 and char in separators:
            yield i
        i += 1


def macro_call(token: Token, spl: str) -> MacroCall | None:
    """The call a macro token makes, or None when its text is not a macro call."""
    call = MACRO_CALL.fullmatch(spl, token.start + 1, token.end - 1)
    if call is None:
        return None
    raw = call.group(2)
    arguments = split_args(spl, call.start(2), call.end(2)) if raw and raw.strip() else []
    return MacroCall(call.group(1), tuple(arguments), token)


def macro_calls(spl: str) -> list[MacroCall]:
    """Every well-formed macro call of the text, in order, subsearches included."""
    text = normalise(spl)
    calls = (macro_call(token, text) for token in lex(text).tokens if token.kind == "macro")
    return [call for call in calls if call is not None]


def glued(tokens: Sequence[Token], i: int) -> list[Token]:
    """The run of tokens from `i` with no whitespace between them (one SPL word)."""
    run = [tokens[i]]
    while i + 1 < len(tokens) and tokens[i + 1].start == tokens[i].end:
        i += 1
        run.append(tokens[i])
    return run


def glued_text(run: Sequence[Token]) -> str | None:
    """A word's literal text, or None when part of it is a macro or a dashboard token."""
    parts: list[str] = []
    for token in run:
        if token.kind in ("macro", "var"):
            return None
        if token.kind not in ("word", "string"):
            break
        parts.append(unquote(token.text) if token.kind == "string" else token.text)
    return "".join(parts)
