"""Opening the store: engine, SQLite pragmas, sessions, and migrations on first use.

``TRAYLINE_DATABASE_URL`` (or ``--db``) picks the database; the default is
``sqlite:///trayline.db`` in the working directory, one file per line workspace.
SQLite runs in WAL mode with foreign keys on and ``synchronous=FULL``: a
manufacturing record that was committed must survive a power cut at the station.
PostgreSQL URLs (``postgresql+psycopg://…``) use the same models, for lines where
several stations share one database.

:func:`open_store` brings the schema to the newest Alembic revision before
returning, so a fresh machine needs no separate setup step; ``trayline db
upgrade`` does the same explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_URL = "sqlite:///trayline.db"
MIGRATIONS = Path(__file__).with_name("migrations")


class StoreError(Exception):
    """The database cannot be opened or migrated; the message says which and why."""


def database_url(explicit: str | None = None) -> str:
    """The URL to use: an explicit ``--db``, then ``TRAYLINE_DATABASE_URL``, then the default."""
    return explicit or os.environ.get("TRAYLINE_DATABASE_URL") or DEFAULT_URL


def redact(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin: the
    # module otherwise commits silently before DDL, so a process killed during a
    # migration would leave half a schema behind.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN")


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"not a database URL: {redact(url)}") from None
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str | None:
    script = ScriptDirectory.from_config(_alembic_config(create_engine("sqlite://")))
    return script.get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``; safe to call on an up-to-date database."""
    command.upgrade(_alembic_config(engine), revision)


@dataclass
class Store:
    """An open store: the engine and a session factory bound to it."""

    engine: Engine
    url: str

    def __post_init__(self) -> None:
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    def new_session(self) -> Session:
        return self._sessions()

    def dispose(self) -> None:
        self.engine.dispose()


def open_store(url: str | None = None, *, migrate: bool = True) -> Store:
    """Open (and by default migrate) the store at ``url`` or the configured default."""
    resolved = database_url(url)
    engine = make_engine(resolved)
    try:
        revision = current_revision(engine)  # also proves the database answers
        if migrate and revision != head_revision():
            upgrade(engine)
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise StoreError(f"cannot open database {redact(resolved)}: {reason}") from None
    return Store(engine, resolved)
