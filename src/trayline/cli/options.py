"""Options several command groups share, defined once so their help reads the same."""

from __future__ import annotations

import typer

DbOption = typer.Option(
    None,
    "--db",
    envvar="TRAYLINE_DATABASE_URL",
    help="Database URL (default sqlite:///trayline.db; e.g. postgresql+psycopg://host/db).",
    show_envvar=True,
)
