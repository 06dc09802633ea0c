"""Shared output for the CLI: one Rich console each for stdout and stderr, and :func:`fail`.

:func:`fail` is the one way a command reports a mistake the user can fix (bad
file, unknown SKU, unreachable database): one line on stderr, ``error: ...``,
then exit with the code the command documents (COMMON exit codes: 2 usage or
configuration, 3 cloud refused, 4 store, ...), never a traceback. Commands call
it where they catch the service's own exception, so the message stays the
service's and the exit code the command's.
"""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_USAGE = 2


def fail(message: str, exit_code: int = EXIT_USAGE) -> NoReturn:
    """Print ``error: message`` on stderr (one line, no traceback) and exit with ``exit_code``."""
    err.print(Text.assemble(("error: ", "bold red"), message))
    raise typer.Exit(exit_code)
