"""`iot-defender-splunk`'s option help: what a new user reads before running a subcommand."""

from __future__ import annotations

import argparse

import pytest

from iot_defender_splunk import cli


def _subcommand_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    (subcommands,) = (
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    )
    return dict(subcommands.choices)


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [action for action in parser._actions if not isinstance(action, argparse._HelpAction)]


def _takes_a_value(action: argparse.Action) -> bool:
    """An option given with a value (not a flag, nor a positional argument)."""
    flag = action.nargs == 0 or isinstance(action, argparse.BooleanOptionalAction)
    return bool(action.option_strings) and not flag


SUBCOMMANDS = _subcommand_parsers()


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_option_says_what_it_does(name: str) -> None:
    silent = [action.dest for action in _options(SUBCOMMANDS[name]) if not action.help]
    assert silent == []


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_option_with_a_default_shows_it(name: str) -> None:
    """A value the command uses unless told otherwise is named in the help (or, for one read
    from a variable, the variable is)."""
    unshown = [
        action.dest
        for action in _options(SUBCOMMANDS[name])
        if _takes_a_value(action)
        and action.default is not None
        and "default" not in (action.help or "")
    ]
    assert unshown == []
