"""appbuild/spl/knowledge.py: what an app defines, read as Splunk reads it, and macro expansion."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appbuild.spl.knowledge import ExpansionError, Knowledge, Macro, expand
from appbuild.spl.lexer import macro_calls, normalise
from tests.spl_samples import KNOWLEDGE, METRIC_NAME, tiny_app


def test_knowledge_from_app(tmp_path: Path) -> None:
    knowledge = Knowledge.from_app(tiny_app(tmp_path))
    arities = {name: macro.arity for name, macro in knowledge.macros.items()}
    assert arities == {
        "iot_defender_index": 0,
        "iot_window": 2,
        "iot_violations": 0,
        "bad_arity": 2,
        "leaks_index": 0,
        "eval_built": 1,
        "summarise": 0,
        "iot_metric": 1,
    }
    assert knowledge.macros["iot_window"].args == ("start", "end")
    assert knowledge.macros["iot_metric"].validation == METRIC_NAME
    assert knowledge.macros["eval_built"].iseval
    assert not knowledge.macros["iot_window"].iseval
    assert knowledge.macros["iot_defender_index"].definition == "index=iot_defender"
    assert dict(knowledge.lookups) == {
        "iot_thing_owners": ("thingName", "owner"),
        "iot_thing_owners.csv": ("thingName", "owner"),
        "iot_thing_state": ("_key", "thingName"),
    }
    assert knowledge.eventtypes == {"iot_violation", "iot_bad"}


def test_a_lookup_whose_file_is_missing_has_no_known_columns(tmp_path: Path) -> None:
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "transforms.conf").write_text("[gone]\nfilename = gone.csv\n")
    assert dict(Knowledge.from_app(tmp_path).lookups) == {"gone": ()}


def test_knowledge_from_an_empty_dir(tmp_path: Path) -> None:
    knowledge = Knowledge.from_app(tmp_path)
    assert not knowledge.macros
    assert not knowledge.lookups
    assert not knowledge.eventtypes


# --- expansion ------------------------------------------------------------------------------------


def test_expansion_is_recursive_and_substitutes_arguments() -> None:
    expanded = expand("`iot_metric(aws:all-bytes-out)` | stats count", KNOWLEDGE)
    assert expanded == 'index=iot_defender metric::"aws:all-bytes-out" | stats count'


def test_quoted_arguments_lose_their_quotes() -> None:
    expanded = expand('`iot_window(-24h, "now")` `iot_thing_filter("a,b")`', KNOWLEDGE)
    assert expanded == "earliest=-24h latest=now thingName=a,b"


def test_conf_continuations_are_blanked_before_expanding() -> None:
    knowledge = Knowledge(
        macros={"two_lines": Macro(0, definition="a \\\n| stats count")},
        lookups={},
        eventtypes=frozenset(),
    )
    assert expand("`two_lines`", knowledge) == "a  \n| stats count"


def test_a_quoted_macro_is_text() -> None:
    assert expand('x="`iot_defender_index`"', KNOWLEDGE) == 'x="`iot_defender_index`"'


@pytest.mark.parametrize(
    ("spl", "why"),
    [
        ("`nope`", "not defined"),
        ("`iot_window(-1h)`", r"takes 2 argument\(s\), called with 1"),
        ("`loop`", "deeper than"),
        ("`built(x)`", "eval expression"),
        ("`lopsided(x)`", "args lists 0"),
    ],
)
def test_what_cannot_be_expanded_says_why(spl: str, why: str) -> None:
    knowledge = Knowledge(
        macros={
            **KNOWLEDGE.macros,
            "loop": Macro(0, definition="`loop`"),
            "built": Macro(1, ("a",), definition='"x=" . $a$', iseval=True),
            "lopsided": Macro(1, definition="x"),
        },
        lookups={},
        eventtypes=frozenset(),
    )
    with pytest.raises(ExpansionError, match=why):
        expand(spl, knowledge)


@given(st.text(alphabet=st.sampled_from(list("ab =|[]()\"$\\\n,'")) | st.characters()))
def test_only_macro_calls_and_continuations_change(text: str) -> None:
    """Text with no backtick comes back as it was, but for its blanked continuations."""
    if "`" not in text:
        assert expand(text, KNOWLEDGE) == normalise(text)


@given(st.sampled_from(sorted(KNOWLEDGE.macros)), st.text(alphabet="abc:-_", min_size=1))
def test_an_expanded_search_calls_no_macro(name: str, value: str) -> None:
    arity = KNOWLEDGE.macros[name].arity
    call = f"`{name}({', '.join([value] * arity)})`" if arity else f"`{name}`"
    assert macro_calls(expand(f"{call} | stats count", KNOWLEDGE)) == []
