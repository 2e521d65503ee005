"""appbuild/spl/check.py: the offline SPL checker catches real mistakes and accepts real searches.

Every rule has a broken search it must flag and correct searches it must leave alone; a property
deletes single delimiters from the valid corpus and expects a problem each time.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appbuild.spl.check import COMMANDS, GENERATING, Problem, check_app, check_search, main
from appbuild.spl.knowledge import Knowledge, Macro
from appbuild.spl.validation import SUBSTITUTES, Validation
from tests.spl_samples import KNOWLEDGE, tiny_app

# Realistic searches the app could ship: every one must pass with no problem at all.
VALID: list[str] = [
    "`iot_defender_index` sourcetype=aws:iot:defender eventtype=iot_violation"
    " | stats count by thingName, behaviorName",
    "| tstats count where `iot_defender_index` sourcetype=aws:iot:* by _time span=1h, sourcetype",
    "| tstats summariesonly=t count from datamodel=Network_Traffic"
    " where All_Traffic.action=blocked by All_Traffic.src",
    '`iot_defender_index` | eval level=if(severity>3, "high|critical]", case(severity==2,'
    ' "medium", severity==1, "low (info)", true(), "none")) | table _time, thingName, level',
    "`iot_defender_index` [ search `iot_defender_index` eventtype=iot_lifecycle"
    " | stats latest(_time) AS seen by thingName | return 100 thingName ] | stats count",
    "`iot_defender_index` | lookup iot_thing_owners thingName OUTPUT owner team"
    " | lookup local=true iot_suppressions.csv behaviorName AS behavior OUTPUTNEW suppressed",
    "`iot_defender_index` sourcetype=aws:iot:logs | spath input=_raw path=details{}.reason"
    " output=reason | spath",
    '`iot_defender_index` | rex field=message "client \\"(?<client_id>[^\\"\\]]+)\\" from'
    ' \\[(?<ip>\\d{1,3}(?:\\.\\d{1,3}){3})\\]" max_match=1',
    '| makeresults count=3 | eval thingName="sensor-".tostring(random() % 10), _time=now()',
    '| inputlookup append=true iot_thing_owners where team="fleet" | fields thingName owner',
    '`iot_defender_index` | stats count(eval(status="failed")) AS failures by thingName'
    " | where failures > 5 | sort - failures | head 10",
    "`iot_defender_index` NOT [| inputlookup iot_suppressions.csv | fields thingName]"
    " | outputlookup key_field=_key iot_thing_state",
    '`iot_thing_filter(sensor-*)` `iot_window(-24h, "now, or later")` | timechart count',
    '`iot_defender_index` eventtype=iot_violation* OR eventtype="iot_lifecycle"'
    " | dedup thingName | fillnull value=0 | table thingName",
    "`iot_defender_index` thingName=$thing|s$ earliest=$global_time.earliest$"
    " | stats count by $split_by$",
    "`iot_defender_index` ```comment: the | here is not a pipe``` | stats count",
    "`iot_defender_index` | appendpipe [stats count AS total] | foreach * [eval <<FIELD>>=1]",
    "| multisearch [search `iot_defender_index` earliest=-1h x] [search `iot_defender_index` y]",
    "`iot_defender_index` | join type=left thingName [| inputlookup iot_thing_owners]"
    " | `iot_thing_filter(x)`",
    '`iot_defender_index` (thingName="a\\"b" OR thingName=c) | eval x = "C:\\\\dir\\\\"',
    "| rest /services/saved/searches splunk_server=local | table title search",
    "`iot_defender_index` | bin _time span=5m | streamstats window=3 avg(count) AS avg"
    " | predict count | fit DensityFunction count into model_x",
    "`iot_defender_index`\n| stats count\n    by thingName\n| sort -count",
    '`iot_defender_index` (eventType="Connect" OR EventType=x) | stats count by eventType',
    "`iot_metric(aws:all-bytes-out)` OR `iot_metric($metric|s$)` | stats count by thing",
]

# One mistake each: the search, the code that must be reported, and a word the message names.
BROKEN: list[tuple[str, str, str]] = [
    ('`iot_defender_index` thingName="sensor-1 | stats count', "unbalanced-quote", "column 32"),
    ('`iot_defender_index` | eval x=if(a>1, "y", "z" | table x', "unbalanced-paren", "column 33"),
    ("`iot_defender_index` | eval x=lower(a)) | table x", "unbalanced-paren", ")"),
    ("`iot_defender_index` NOT [| inputlookup iot_thing_owners", "unbalanced-bracket", "["),
    ("`iot_defender_index` | stats count ] | table x", "unbalanced-bracket", "]"),
    ("`iot_defender_index | stats count", "unbalanced-backtick", "`"),
    ("`iot_defender_index` ```never closed | stats count", "unbalanced-backtick", "```"),
    ("`iot_defender_index` | stast count by thingName", "unknown-command", "'stats'"),
    ("`iot_defender_index` | Stats count", "unknown-command", "lowercase"),
    ("`iot_defender_index` | thingName=x", "unknown-command", "thingName=x"),
    ("`iot_defender_index` [ thingName=x ] | stats count", "unknown-command", "thingName=x"),
    ('`iot_defender_index` | "stats" count', "unknown-command", '"stats"'),
    ("| stats count", "not-generating", "'stats'"),
    ("`iot_defender_index` [ stats count ] | table x", "not-generating", "'stats'"),
    ("`iot_defender_indx` | stats count", "undefined-macro", "iot_defender_indx"),
    ("`iot_defender_index` | `iot_window(-24h)`", "macro-arity", "takes 2"),
    ("`iot_defender_index(x)` | stats count", "macro-arity", "called with 1"),
    ('`iot_defender_index` `iot_thing_filter("a,b", c)`', "macro-arity", "called with 2"),
    ("`iot_defender_index` `iot_thing_filter(x, )`", "macro-arity", "empty argument"),
    ("`iot_defender_index` `iot thing`", "bad-macro-call", "iot thing"),
    ("`iot_metric(aws:all bytes)` | stats count", "macro-validation", "binds the argument names"),
    ("`iot_metric(aws:all bytes)` | stats count", "macro-validation", "substitutes $arg$"),
    ("`iot_defender_index` | lookup iot_thing_ownr thingName OUTPUT owner", "undefined-lookup", ""),
    ("| inputlookup append=t max=10 nope.csv", "undefined-lookup", "'nope.csv'"),
    ("`iot_defender_index` | outputlookup create_empty=false iot_state", "undefined-lookup", ""),
    ("`iot_defender_index` | lookup local=true", "undefined-lookup", "names no lookup"),
    ("| from lookup:iot_missing", "undefined-lookup", "iot_missing"),
    ("`iot_defender_index` eventtype=iot_violatoin", "undefined-eventtype", "iot_violatoin"),
    ('`iot_defender_index` eventtype="iot violation"', "undefined-eventtype", "iot violation"),
    ("`iot_defender_index` eventtype = nope*", "undefined-eventtype", "nope*"),
    ('`iot_defender_index` | where eventtype="x"', "undefined-eventtype", "'x'"),
    ("index=iot_defender sourcetype=aws:iot", "hardcoded-index", "index=iot_defender"),
    ("INDEX = main | stats count", "hardcoded-index", "INDEX"),
    ("index::main | stats count", "hardcoded-index", "index::main"),
    ("sourcetype=x index!=_internal", "hardcoded-index", "index!=_internal"),
    ("| tstats count where index=main by host", "hardcoded-index", "index=main"),
    ("| tstats count where index IN (a, b) by host", "hardcoded-index", "index IN"),
    ("`iot_defender_index` [search index=main | return x]", "hardcoded-index", "index=main"),
    ("`iot_thing_filter(index=main)`", "hardcoded-index", "index=main"),
    ("`iot_defender_index` | | stats count", "empty-pipe", "column 22"),
    ("`iot_defender_index` | stats count |", "empty-pipe", "column 36"),
    ("|", "empty-pipe", "|"),
    ("", "empty-search", "empty"),
    ("`iot_defender_index` [ ] | stats count", "empty-search", "subsearch"),
]

# Each rule's broken searches above, by code: every code the brief names is exercised.
NAMED_CODES = {
    "unbalanced-quote",
    "unknown-command",
    "undefined-macro",
    "undefined-lookup",
    "undefined-eventtype",
    "hardcoded-index",
    "not-time-bounded",
    "unbalanced-paren",
    "unbalanced-bracket",
    "empty-pipe",
    "macro-arity",
}


def codes(problems: list[Problem]) -> list[str]:
    return [problem.code for problem in problems]


@pytest.mark.parametrize("spl", VALID)
def test_valid_search_has_no_problem(spl: str) -> None:
    assert check_search(spl, KNOWLEDGE) == []


@pytest.mark.parametrize(("spl", "code", "named"), BROKEN)
def test_broken_search_is_caught(spl: str, code: str, named: str) -> None:
    problems = check_search(spl, KNOWLEDGE)
    assert code in codes(problems), problems
    messages = [p.message for p in problems if p.code == code]
    assert any(named in message for message in messages), messages
    assert all("line " in message and "column " in message for message in messages)


def test_every_named_code_has_a_broken_example() -> None:
    exercised = {code for _, code, _ in BROKEN} | {"not-time-bounded"}  # time: tests below
    assert exercised >= NAMED_CODES


def test_unclosed_backtick_reports_only_itself() -> None:
    problems = check_search("`iot_defender_index | stats count", KNOWLEDGE)
    assert codes(problems) == ["unbalanced-backtick"]


def test_position_counts_lines_and_columns() -> None:
    spl = "`iot_defender_index`\n| stats count\n| eval x=if(a, b\n| table x"
    (problem,) = check_search(spl, KNOWLEDGE)
    assert problem.code == "unbalanced-paren"
    assert "line 3, column 12" in problem.message


def test_characters_inside_quotes_are_ignored() -> None:
    spl = '`iot_defender_index` | eval x="( [ ` | index=main eventtype=nope \\" ]" | table x'
    assert check_search(spl, KNOWLEDGE) == []


def test_escaped_pipe_outside_quotes_is_not_a_pipe() -> None:
    assert check_search("`iot_defender_index` a\\|b", KNOWLEDGE) == []


def test_quoted_macro_is_not_expanded_nor_checked() -> None:
    assert check_search('`iot_defender_index` "audit`nope`local"', KNOWLEDGE) == []


def test_macro_may_stand_for_a_command() -> None:
    spl = "`iot_defender_index` | `iot_thing_filter(x)` | `iot_window(a,b)`"
    assert check_search(spl, KNOWLEDGE) == []


def test_unknown_command_suggests_the_nearest() -> None:
    (problem,) = check_search("`iot_defender_index` | tabel x", KNOWLEDGE)
    assert problem.code == "unknown-command"
    assert "'tabel'" in problem.message
    assert "'table'" in problem.message


def test_each_problem_is_reported_once_in_order() -> None:
    spl = "index=a | stast x | `nope` | lookup missing y"
    assert codes(check_search(spl, KNOWLEDGE)) == [
        "hardcoded-index",
        "unknown-command",
        "undefined-macro",
        "undefined-lookup",
    ]


def test_several_pipes_each_reported() -> None:
    assert codes(check_search("a | | b |", KNOWLEDGE)).count("empty-pipe") == 2


# --- index and time -------------------------------------------------------------------------------


def test_allow_index_permits_the_index_macro_definition() -> None:
    assert check_search("index=iot_defender", KNOWLEDGE, allow_index=True) == []
    assert codes(check_search("index=iot_defender", KNOWLEDGE)) == ["hardcoded-index"]


def test_index_as_a_field_name_is_not_an_index_term() -> None:
    spl = "| tstats count where `iot_defender_index` by index, sourcetype | rename index AS idx"
    assert check_search(spl, KNOWLEDGE) == []


@pytest.mark.parametrize(
    "spl",
    [
        "`iot_defender_index` earliest=-24h@h latest=now | stats count",
        "| tstats count where `iot_defender_index` earliest=-7d by thingName",
        "`iot_defender_index` _index_earliest=-15m",
        "| makeresults | eval x=1",
        "| inputlookup iot_thing_owners",
        "| rest /services/server/info",
        "| multisearch [search `iot_defender_index` earliest=-1h a] [search b earliest=-2h]",
    ],
)
def test_time_bounded_searches_pass(spl: str) -> None:
    assert check_search(spl, KNOWLEDGE, require_time_bound=True) == []


@pytest.mark.parametrize(
    "spl",
    [
        "`iot_defender_index` | stats count",
        "| tstats count where `iot_defender_index` by thingName",
        '`iot_defender_index` "earliest=-24h"',
        "`iot_defender_index` | search earliest=-24h",
        "`iot_defender_index` [search `iot_defender_index` earliest=-1h | return x]",
        "| multisearch [search `iot_defender_index` earliest=-1h a] [search b]",
    ],
)
def test_unbounded_searches_are_caught(spl: str) -> None:
    problems = check_search(spl, KNOWLEDGE, require_time_bound=True)
    assert codes(problems) == ["not-time-bounded"]
    assert check_search(spl, KNOWLEDGE) == []


# --- fragments and continuations ------------------------------------------------------------------


def test_fragment_may_start_with_any_command() -> None:
    assert check_search("| stats count by thingName", KNOWLEDGE, fragment=True) == []
    assert codes(check_search("| stast count", KNOWLEDGE, fragment=True)) == ["unknown-command"]


def test_conf_continuations_are_normalised() -> None:
    spl = "`iot_defender_index` \\\n| stats count \\\n    by thingName \\\r\n| sort - count"
    assert check_search(spl, KNOWLEDGE) == []
    broken = "`iot_defender_index` \\\n| stats count \\\n| \\\n| sort - count"
    (problem,) = check_search(broken, KNOWLEDGE)
    assert problem.code == "empty-pipe"
    assert "line 3, column 1" in problem.message


def test_dashboard_tokens_are_opaque() -> None:
    spl = "`iot_defender_index` eventtype=$et$ | lookup $lookup$ a | `iot_thing_filter($t|s$)`"
    assert check_search(spl, KNOWLEDGE) == []


def test_command_lists_are_consistent() -> None:
    assert GENERATING <= COMMANDS
    for name in ("stats", "tstats", "eval", "where", "rex", "spath", "lookup", "fit", "apply"):
        assert name in COMMANDS
    assert len(COMMANDS) > 150


def test_a_call_failing_one_reading_is_reported_with_it() -> None:
    validation = Validation(("metric_name",), 'match(metric_name, "^a")')
    knowledge = Knowledge(
        macros={"iot_metric": Macro(1, ("metric_name",), validation=validation)},
        lookups={},
        eventtypes=frozenset(),
    )
    problems = check_search("`iot_metric(aws:bytes)` | stats count", knowledge)
    assert codes(problems) == ["macro-validation"]
    assert SUBSTITUTES in problems[0].message


# --- the app: check_app ---------------------------------------------------------------------------


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return tiny_app(tmp_path)


def test_check_app_finds_each_problem_and_passes_the_rest(app: Path) -> None:
    results = {label: codes(problems) for label, problems in check_app(app).items()}
    assert results == {
        "macros.conf [iot_defender_index]": [],
        "macros.conf [iot_window(2)]": [],
        "macros.conf [iot_violations]": [],
        "macros.conf [bad_arity(2)]": ["macro-arity"],
        "macros.conf [leaks_index]": ["hardcoded-index"],
        "macros.conf [eval_built(1)]": [],
        "macros.conf [summarise]": [],
        "macros.conf [iot_metric(1)]": [],
        "savedsearches.conf [IoT - Violations by thing]": [],
        "savedsearches.conf [IoT - Unbounded]": ["not-time-bounded"],
        "savedsearches.conf [IoT - Typo]": ["undefined-lookup"],
        "savedsearches.conf [IoT - Report]": [],
        "savedsearches.conf [IoT - Metric]": ["macro-validation", "macro-validation"],
        "eventtypes.conf [iot_violation]": [],
        "eventtypes.conf [iot_bad]": ["eventtype-not-terms"],
        "views/iot_fleet.xml [ds_chain]": [],
        "views/iot_fleet.xml [ds_ok]": [],
        "views/iot_fleet.xml [ds_typo]": ["unknown-command"],
        "views/iot_simple.xml [search 1]": [],
        "views/iot_simple.xml [search 2]": [],
        "views/iot_simple.xml [search 3]": ["hardcoded-index"],
    }


def test_check_app_macro_definition_problems(tmp_path: Path) -> None:
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "macros.conf").write_text(
        "[m(1)]\nargs = a\ndefinition = x=$a$ y=$b$\n\n"
        "[m]\ndefinition = x\n\n"
        '[e(1)]\nargs = a\niseval = 1\ndefinition = "x=" . ($a$\n',
        encoding="utf-8",
    )
    results = {label: codes(problems) for label, problems in check_app(tmp_path).items()}
    assert results == {
        "macros.conf [m(1)]": ["undefined-macro-arg"],
        "macros.conf [m]": ["overloaded-macro"],
        "macros.conf [e(1)]": ["unbalanced-paren"],
    }


def test_saved_search_settings_inherit_from_default(tmp_path: Path) -> None:
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "savedsearches.conf").write_text(
        "[default]\nenableSched = 1\ndispatch.earliest_time = -1h\n\n"
        "[bounded]\nsearch = x | stats count\n\n"
        "[cleared]\ndispatch.earliest_time =\nsearch = x | stats count\n\n"
        "[unscheduled]\nenableSched = 0\ndispatch.earliest_time =\nsearch = x\n",
        encoding="utf-8",
    )
    results = {label: codes(problems) for label, problems in check_app(tmp_path).items()}
    assert results == {
        "savedsearches.conf [bounded]": [],
        "savedsearches.conf [cleared]": ["not-time-bounded"],
        "savedsearches.conf [unscheduled]": [],
    }


def test_check_app_reports_a_conf_that_does_not_parse(tmp_path: Path) -> None:
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "savedsearches.conf").write_text("[a]\nno equals sign here\n")
    assert codes(check_app(tmp_path)["savedsearches.conf"]) == ["bad-conf"]
    (tmp_path / "default" / "macros.conf").write_text("[a]\nno equals sign here\n")
    assert codes(check_app(tmp_path)["knowledge"]) == ["bad-conf"]


def test_check_app_reports_a_broken_view(tmp_path: Path) -> None:
    views = tmp_path / "default" / "data" / "ui" / "views"
    views.mkdir(parents=True)
    (views / "a.xml").write_text(
        "<dashboard><definition><![CDATA[{nope]]></definition></dashboard>"
    )
    (views / "b.xml").write_text("<dashboard>")
    results = {label: codes(problems) for label, problems in check_app(tmp_path).items()}
    assert results == {"views/a.xml": ["bad-view"], "views/b.xml": ["bad-view"]}


def test_cli_lists_problems_and_fails(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(app)]) == 1
    out = capsys.readouterr().out
    assert "savedsearches.conf [IoT - Typo]: undefined-lookup: lookup 'iot_owners'" in out
    assert "21 searches checked, 9 problem(s)" in out


def test_cli_passes_a_clean_app(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "macros.conf").write_text(
        "[iot_defender_index]\ndefinition = index=x\n"
    )
    assert main([str(tmp_path)]) == 0
    assert "1 searches checked, 0 problem(s)" in capsys.readouterr().out


def test_cli_rejects_a_non_app(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path)]) == 2
    assert "not a Splunk app" in capsys.readouterr().err


# --- properties -----------------------------------------------------------------------------------


def roles(spl: str) -> dict[int, str]:
    """The role of each quote, paren and bracket of a valid search, found without the checker.

    "delimiter": a `"` that opens or closes a string, or ( ) [ ] outside strings, macro calls
    and ``` comments. "quoted": ( ) [ ] inside a quoted string, which are text. "other": escaped
    by a backslash (which escapes in and out of quotes, as in SPL), inside a comment, or a
    paren of a macro call's argument list.
    """
    role: dict[int, str] = {}
    i, in_macro, in_string = 0, False, False
    while i < len(spl):
        char = spl[i]
        if not in_string and not in_macro and spl.startswith("```", i):
            end = spl.index("```", i + 3) + 3
            role.update({j: "other" for j in range(i, end) if spl[j] in '"()[]'})
            i = end
            continue
        if char == "\\":
            if i + 1 < len(spl) and spl[i + 1] in '"()[]':
                role[i + 1] = "other"
            i += 2
            continue
        if char == '"':
            role[i] = "delimiter"
            in_string = not in_string
        elif char in "()[]":
            role[i] = "quoted" if in_string else "other" if in_macro else "delimiter"
        elif char == "`" and not in_string:
            in_macro = not in_macro
        i += 1
    return role


CORPUS_DELETIONS = [(spl, pos, role) for spl in VALID for pos, role in roles(spl).items()]
DELETION_CODE = {
    '"': "unbalanced-quote",
    "(": "unbalanced-paren",
    ")": "unbalanced-paren",
    "[": "unbalanced-bracket",
    "]": "unbalanced-bracket",
}


def test_corpus_has_each_kind_of_deletion() -> None:
    kinds = {(spl[pos], role) for spl, pos, role in CORPUS_DELETIONS}
    assert {(char, "delimiter") for char in DELETION_CODE} <= kinds
    assert {("(", "quoted"), ("]", "quoted"), ('"', "other"), ("(", "other")} <= kinds


@pytest.mark.property
@given(st.sampled_from(CORPUS_DELETIONS))
def test_deleting_one_delimiter_is_always_caught(case: tuple[str, int, str]) -> None:
    """A deleted delimiter is always reported; a deleted quoted paren or bracket never is.

    Sound because each delimiter is counted by parity or nesting that nothing else changes.
    A backslash escapes in and out of quotes alike, so removing an unescaped `"` leaves every
    other quote's role (escaped or not) unchanged: the count of unescaped quotes turns odd and
    the last string cannot close (no corpus comment holds a quote or string a backtick).
    Parentheses are counted per pipeline stage and brackets over the whole search, and neither
    decides where a stage or token ends, so one fewer leaves an unmatched partner. Inside a
    string they are text, so the search stays valid. Deleting an escaped quote or a macro
    argument's paren may or may not break the search: those are only run, not judged.
    """
    spl, pos, role = case
    broken = spl[:pos] + spl[pos + 1 :]
    problems = check_search(broken, KNOWLEDGE)
    if role == "delimiter":
        assert DELETION_CODE[spl[pos]] in codes(problems), (broken, problems)
    elif role == "quoted":
        assert problems == [], broken


@pytest.mark.property
@given(st.sampled_from(VALID), st.data())
def test_deleting_any_character_never_crashes(spl: str, data: st.DataObject) -> None:
    pos = data.draw(st.integers(min_value=0, max_value=len(spl) - 1))
    for problem in check_search(spl[:pos] + spl[pos + 1 :], KNOWLEDGE):
        assert problem.code
        assert problem.message


@pytest.mark.property
@given(st.text(alphabet=st.sampled_from(list('ab =|[]()"`$\\\n ,*')) | st.characters()))
def test_any_text_gets_a_list_of_problems(text: str) -> None:
    problems = check_search(text, KNOWLEDGE, require_time_bound=True)
    assert all(isinstance(problem, Problem) for problem in problems)
