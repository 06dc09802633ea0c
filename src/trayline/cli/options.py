"""Options several command groups share, defined once so their help reads the same."""

from __future__ import annotations

import typer

from trayline.cli.console import fail
from trayline.store.db import Store, StoreError, open_store

EXIT_STORE = 4

DbOption = typer.Option(
    None,
    "--db",
    help="Database URL (default: $TRAYLINE_DATABASE_URL, else sqlite:///trayline.db; "
    "e.g. postgresql+psycopg://host/db).",
)
"""No ``envvar=`` here: trayline.settings is the one reader of the environment, and
``open_store(None)`` asks it (option > variable > default, docs/configuration.md)."""


def open_db(db: str | None, *, migrate: bool = True) -> Store:
    """The store a ``--db`` option names, or a one-line error (exit 4) if it cannot be opened.

    Use it as ``with open_db(db) as store:`` so the engine is disposed of however
    the command ends (the :class:`Store` is its own context manager).
    """
    try:
        return open_store(db, migrate=migrate)
    except StoreError as exc:
        fail(str(exc), EXIT_STORE)


WideOption = typer.Option(
    False,
    "--wide",
    help="Show every column at its natural width (the default fits the terminal, e.g. 80).",
)

RateLimitOption = typer.Option(
    None,
    "--rate-limit",
    help="REQUESTS/SECONDS the cloud allows (default: $TRAYLINE_RATE_LIMIT, else 10000/300).",
)
"""For the commands that talk to the cloud; read with ``rate_limit_from_env(value)``."""
