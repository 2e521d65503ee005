"""The ``iot-defender-splunk`` command: one subcommand per operator job.

Each module in ``iot_defender_splunk.commands`` names itself (``NAME``, ``SUMMARY``), adds its
options (``add_arguments``) and does its job (``run``). A mistake the user can fix is a
``CommandError``: one line on stderr and exit status 1, never a traceback; argparse's usage
errors exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Protocol, cast

from iot_defender_splunk.commands import (
    backfill_audit,
    capacity,
    demo,
    replay,
    send,
    simulate,
    verify,
)

PROG = "iot-defender-splunk"


class CommandError(Exception):
    """A failure the user can act on, said in one line."""


class Command(Protocol):
    NAME: str
    SUMMARY: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


COMMANDS: tuple[ModuleType, ...] = (
    demo,
    simulate,
    send,
    replay,
    backfill_audit,
    verify,
    capacity,
)


def version() -> str:
    """The installed distribution's version, or the source tree's pyproject version."""
    try:
        return metadata.version(PROG)
    except metadata.PackageNotFoundError:
        import tomllib  # noqa: PLC0415 - only when running from a source tree

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Operate iot-defender-splunk: simulate a fleet, send and replay events to "
        "Splunk HEC, backfill audit history, verify a deployment, size a fleet.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        command = cast("Command", module)
        sub = subcommands.add_parser(
            command.NAME,
            help=command.SUMMARY,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run = cast("Callable[[argparse.Namespace], int]", args.run)
    try:
        return run(args)
    except CommandError as error:
        sys.stderr.write(f"{PROG} {args.command}: error: {error}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG} {args.command}: interrupted\n")
        return 130
