"""What long-running subcommands show on stderr: progress bars and warnings.

Stdout stays the command's result (summaries a script can read); progress goes to stderr, and
only when stderr is a terminal, so logs and pipes get no animation.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress

__all__ = ["progress", "warn"]


@contextlib.contextmanager
def progress(description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr; yields the function that advances it by a count."""
    console = Console(stderr=True)
    with Progress(
        *Progress.get_default_columns(),
        MofNCompleteColumn(),
        console=console,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda amount: bar.advance(task, amount)


def warn(command: str, message: str) -> None:
    """One warning line on stderr, in the form the CLI's errors take."""
    sys.stderr.write(f"iot-defender-splunk {command}: warning: {message}\n")
