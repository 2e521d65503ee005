"""appbuild/spl/validation.py: macro validations judged under both readings of the documentation.

Splunk's macros.conf.example binds argument names; its Knowledge Manager manual substitutes
$arg$ tokens. A validation must hold under both, and anything outside the small eval subset
understood is reported as unreadable, never passed.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appbuild.spl.validation import BINDS_NAMES, SUBSTITUTES, Validation, validation_verdicts
from tests.spl_samples import METRIC_NAME


def test_each_reading_of_a_validation_is_judged() -> None:
    """Bare names fail if Splunk substitutes tokens first, tokens fail if it binds names."""
    bare = Validation(("metric_name",), 'match(metric_name, "^[a-z:-]+$")')
    token = Validation(("metric_name",), 'match("$metric_name$", "^[a-z:-]+$")')
    assert validation_verdicts(bare, ["aws:bytes"]) == {BINDS_NAMES: True, SUBSTITUTES: None}
    assert validation_verdicts(token, ["aws:bytes"]) == {BINDS_NAMES: False, SUBSTITUTES: True}
    assert validation_verdicts(METRIC_NAME, ["aws:bytes"]) == {
        BINDS_NAMES: True,
        SUBSTITUTES: True,
    }


def test_a_quote_in_an_argument_breaks_the_substituted_expression() -> None:
    """Substituted, the value ends the string literal early: the expression is not valid."""
    value = 'x", "y") OR match("'
    verdicts = validation_verdicts(METRIC_NAME, [value])
    assert verdicts[BINDS_NAMES] is False
    assert str(verdicts[SUBSTITUTES]).startswith("unreadable")


@pytest.mark.parametrize(
    "expression",
    ["isint(metric_name)", "match(metric_name)", 'match("$metric_name$", "(")', "match(a b)"],
)
def test_a_validation_the_checker_cannot_read_is_reported(expression: str) -> None:
    verdicts = validation_verdicts(Validation(("metric_name",), expression), ["x"])
    assert all(str(v).startswith("unreadable") for v in verdicts.values()), verdicts


@pytest.mark.property
@given(st.text(alphabet=st.sampled_from(list('aws:-_. ",()$\\')) | st.characters()))
def test_no_argument_passes_both_readings_unless_it_is_valid(value: str) -> None:
    """Whatever the argument (quotes that break out of the token's string included), both
    readings get an answer, and a call passes only if the value itself is a valid metric name."""
    verdicts = validation_verdicts(METRIC_NAME, [value])
    assert set(verdicts) == {BINDS_NAMES, SUBSTITUTES}
    if all(verdict is True for verdict in verdicts.values()):
        assert re.search(r"^[A-Za-z0-9:._-]+$", value)
