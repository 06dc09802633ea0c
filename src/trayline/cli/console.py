"""Shared output for the CLI: one Rich console each for stdout and stderr, and user errors.

A :class:`UserError` is the only way a command reports a mistake the user can
fix (bad file, unknown SKU, unreachable database): :func:`fail` prints it as one
line on stderr and exits with the code the command documents, never a traceback.
"""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_USAGE = 2


class UserError(Exception):
    """A problem the user can fix; ``exit_code`` is what the command exits with."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def fail(message: str, exit_code: int = EXIT_USAGE) -> NoReturn:
    err.print(Text.assemble(("error: ", "bold red"), message))
    raise typer.Exit(exit_code)
