"""``trayline db``: create or migrate the store explicitly (it also migrates on first use)."""

from __future__ import annotations

import typer

from trayline.cli.console import out
from trayline.cli.options import DbOption, open_db
from trayline.store.db import (
    current_revision,
    database_url,
    head_revision,
    redact,
)

app = typer.Typer(
    help="Create or migrate the trayline database.\n\nExample: trayline db upgrade --db sqlite:///line1.db",
    no_args_is_help=True,
)


@app.command()
def upgrade(db: str | None = DbOption) -> None:
    """Apply every pending migration (also done automatically on first use).

    Example: TRAYLINE_DATABASE_URL=postgresql+psycopg://127.0.0.1/line trayline db upgrade
    """
    url = database_url(db)
    with open_db(url) as store:
        out.print(f"{redact(url)} is at revision {current_revision(store.engine)}")


@app.command()
def status(db: str | None = DbOption) -> None:
    """Show the database's migration revision and the newest one trayline knows.

    Example: trayline db status
    """
    url = database_url(db)
    with open_db(url, migrate=False) as store:
        current = current_revision(store.engine)
    head = head_revision()
    state = "up to date" if current == head else "needs `trayline db upgrade`"
    out.print(f"{redact(url)}: revision {current or '(empty)'}; newest {head}; {state}")
