"""``trayline cloud``: placeholder until its issue lands."""

from __future__ import annotations

import typer

app = typer.Typer(help="cloud commands.", no_args_is_help=True)
