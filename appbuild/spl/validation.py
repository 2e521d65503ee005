"""Macro `validation` expressions, judged offline on the arguments a search passes.

Only string literals, argument names, match() and coalesce() are understood; anything else is
reported as unreadable, never passed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Validation:
    """A macro's `validation` eval expression and the argument names it may refer to."""

    args: tuple[str, ...]
    expression: str


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
