"""appbuild/spl/lexer.py: tokens, pipeline stages, words and macro calls, as Splunk reads SPL."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appbuild.spl.lexer import (
    lex,
    macro_calls,
    normalise,
    split_outside,
    stages,
    unquote,
    where,
    words,
)


def kinds(spl: str) -> list[tuple[str, str]]:
    return [(token.kind, token.text) for token in lex(spl).tokens]


def test_tokens_of_a_search() -> None:
    spl = '`iot_defender_index(x)` thing="a | b" [search c] | eval y=len($tok|s$)'
    assert kinds(spl) == [
        ("macro", "`iot_defender_index(x)`"),
        ("word", "thing="),
        ("string", '"a | b"'),
        ("lbrack", "["),
        ("word", "search"),
        ("word", "c"),
        ("rbrack", "]"),
        ("pipe", "|"),
        ("word", "eval"),
        ("word", "y=len"),
        ("lparen", "("),
        ("var", "$tok|s$"),
        ("rparen", ")"),
    ]


def test_backslash_escapes_in_and_out_of_quotes() -> None:
    assert kinds('a\\|b "c\\"|d"') == [("word", "a\\|b"), ("string", '"c\\"|d"')]


def test_comments_are_no_tokens() -> None:
    assert kinds("a ```a | comment``` b") == [("word", "a"), ("word", "b")]


@pytest.mark.parametrize(
    ("spl", "problems"),
    [
        ('a "b', [("unbalanced-quote", 2)]),
        ("a `b", [("unbalanced-backtick", 2)]),
        ("a ```b", [("unbalanced-backtick", 2)]),
        ('`m("x)`', [("unbalanced-quote", 3), ("unbalanced-backtick", 0)]),
    ],
)
def test_what_never_closes_is_reported_where_it_opens(
    spl: str, problems: list[tuple[str, int]]
) -> None:
    found = lex(spl).found
    assert [(f.code, f.pos) for f in found] == problems
    assert all(f.message.endswith(f"at {where(spl, f.pos)}") for f in found)


def test_where_counts_lines_and_columns_from_one() -> None:
    assert where("ab\ncd", 4) == "line 2, column 2"
    assert where("ab", 0) == "line 1, column 1"


def test_continuations_are_blanked_in_place() -> None:
    spl = "a \\\n| b \\  \r\n| c"
    assert normalise(spl) == "a  \n| b    \r\n| c"
    assert len(normalise(spl)) == len(spl)


def test_unquote_resolves_escapes() -> None:
    assert unquote('"a\\"b\\\\c"') == 'a"b\\c'


# --- stages ---------------------------------------------------------------------------------------


def test_stages_split_on_top_level_pipes_only() -> None:
    """Comments stay in the stage they sit in; so do quotes, macro calls and subsearches."""
    spl = (
        '`m(a|b)` x="1 | 2" ```c | d``` [search e | head 1]\n'
        "| stats count   by  thing\n| | where x>1"
    )
    assert stages(spl) == [
        '`m(a|b)` x="1 | 2" ```c | d``` [search e | head 1]',
        "stats count by thing",
        "where x>1",
    ]


def test_a_leading_pipe_gives_no_empty_stage() -> None:
    assert stages("| tstats count where x | table a") == ["tstats count where x", "table a"]


def test_conf_continuations_do_not_end_up_in_stages() -> None:
    assert stages("a \\\n| stats count \\\n    by thing") == ["a", "stats count by thing"]


# --- words, arguments and macro calls -------------------------------------------------------------


def test_words_keep_strings_and_argument_lists_whole() -> None:
    assert words('count(eval(x="a b")) AS n  by thing, "name x"') == [
        'count(eval(x="a b"))',
        "AS",
        "n",
        "by",
        "thing,",
        '"name x"',
    ]


def test_split_outside_ignores_nested_separators() -> None:
    assert split_outside('a=if(x, 1, 2), b="c, d", `m(e, f)`, g', ",") == [
        "a=if(x, 1, 2)",
        ' b="c, d"',
        " `m(e, f)`",
        " g",
    ]


def test_macro_calls_with_their_arguments() -> None:
    calls = macro_calls('`a` [search `b(1, "x, y")`] "`not_a_call`" `bad call`')
    assert [(call.name, call.args) for call in calls] == [("a", ()), ("b", ("1", '"x, y"'))]
    assert [offset for _, offset in calls[1].arguments] == [15, 17]


# --- properties -----------------------------------------------------------------------------------

ANY_TEXT = st.text(alphabet=st.sampled_from(list('ab =|[]()"`$\\\n ,*')) | st.characters())


@given(ANY_TEXT)
def test_tokens_are_ordered_slices_of_the_text(spl: str) -> None:
    """Whatever the text, every token is its own slice, in order, none overlapping, and all
    that lies between tokens is blank or a comment."""
    lexed = lex(spl)
    last = 0
    for token in lexed.tokens:
        assert last <= token.start < token.end <= len(spl)
        assert spl[token.start : token.end] == token.text
        gap = spl[last : token.start]
        assert not gap.strip() or "```" in gap
        last = token.end


@given(ANY_TEXT, st.sampled_from([",", " ", "|"]))
def test_split_parts_join_back_to_the_text(text: str, separator: str) -> None:
    assert separator.join(split_outside(text, separator)) == text


WORD = st.text(alphabet="abcxyz=_.*0123456789", min_size=1, max_size=8)
QUOTED = st.text(alphabet="ab |[]()`\\,", max_size=8).map(
    lambda text: '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
)
SUBSEARCH = st.lists(WORD, min_size=1, max_size=3).map(lambda ws: f"[search {' | '.join(ws)}]")
STAGE = st.lists(st.one_of(WORD, QUOTED, SUBSEARCH), min_size=1, max_size=5)


@given(st.lists(STAGE, min_size=1, max_size=6))
def test_stages_are_the_stages_a_search_was_built_from(built: list[list[str]]) -> None:
    """Pipes inside quotes and subsearches never split a stage; every top-level one does."""
    spl = " | ".join(" ".join(items) for items in built)
    assert stages(spl) == [" ".join(" ".join(items).split()) for items in built]


NAME = st.from_regex(r"[a-z_][a-z0-9_.:-]{0,10}", fullmatch=True)
ARGUMENT = st.one_of(WORD, QUOTED, st.from_regex(r"-[0-9]{1,2}[hd]", fullmatch=True))


@given(NAME, st.lists(ARGUMENT, max_size=4))
def test_a_macro_call_reads_back_as_it_was_written(name: str, args: list[str]) -> None:
    call = f"`{name}({', '.join(args)})`" if args else f"`{name}`"
    (found,) = macro_calls(f"x {call} | stats count")
    assert (found.name, found.args) == (name, tuple(args))
