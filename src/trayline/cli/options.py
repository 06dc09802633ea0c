"""Options several command groups share, defined once so their help reads the same."""

from __future__ import annotations

import typer

from trayline.cli.console import fail
from trayline.store.db import Store, StoreError, open_store

EXIT_STORE = 4

DbOption = typer.Option(
    None,
    "--db",
    envvar="TRAYLINE_DATABASE_URL",
    help="Database URL (default sqlite:///trayline.db; e.g. postgresql+psycopg://host/db).",
    show_envvar=True,
)


def open_db(db: str | None, *, migrate: bool = True) -> Store:
    """The store a ``--db`` option names, or a one-line error (exit 4) if it cannot be opened."""
    try:
        return open_store(db, migrate=migrate)
    except StoreError as exc:
        fail(str(exc), EXIT_STORE)
