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

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DatabaseError,
    IntegrityError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.orm import Session, sessionmaker

from trayline import settings

DEFAULT_URL = "sqlite:///trayline.db"
MIGRATIONS = Path(__file__).with_name("migrations")
SUPPORTED_BACKENDS = ("sqlite", "postgresql")
MIGRATION_LOCK = 7_346_107_281_003
"""The PostgreSQL advisory-lock key held while migrating: two processes starting on a fresh
database at once migrate one after the other instead of colliding on ``CREATE TABLE``."""


class StoreError(Exception):
    """The database cannot be opened, migrated or written; the message says why and what next.

    Every command maps it to exit code 4 (store problem), printed as one line.
    """


def database_url(explicit: str | None = None) -> str:
    """The URL to use: an explicit ``--db``, then ``TRAYLINE_DATABASE_URL``, then the default."""
    return explicit or settings.database_url() or DEFAULT_URL


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
        raise StoreError(
            f"not a database URL: {redact(url)}; use sqlite:///PATH or postgresql+psycopg://HOST/DB"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise StoreError(
            f"unsupported database {redact(url)}: trayline stores its records in SQLite or "
            f"PostgreSQL; use sqlite:///PATH or postgresql+psycopg://HOST/DB"
        )
    try:
        if backend == "sqlite":
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    except (NoSuchModuleError, ImportError, ArgumentError) as exc:
        raise StoreError(f"cannot use database {redact(url)}: {exc}") from None


def describe_failure(exc: BaseException, url: str, verb: str = "cannot open") -> str:
    """One line for a failing database, with the next step a person can take."""
    orig = getattr(exc, "orig", None) or exc
    reason = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    where = redact(url)
    low = reason.lower()
    if "not a database" in low or "malformed" in low:
        step = "it is not a trayline SQLite database (or it is damaged): move it away or use --db"
    elif "readonly" in low or "read-only" in low or "unable to open" in low:
        step = "the file or its folder is missing or not writable: check the path and permissions"
    elif "full" in low or "no space" in low:
        step = "the disk is full: free space, then run the same command again"
    elif "connect" in low or "could not translate" in low or "timeout" in low:
        step = "the database server does not answer: start it or check the URL, then run again"
    else:
        step = "check the database, then run the same command again"
    return f"{verb} database {where}: {reason}; {step}"


_CONVERTED = (OperationalError, InterfaceError)


def _is_store_failure(exc: BaseException) -> bool:
    """Failures of the database itself (as opposed to a constraint the code handles)."""
    if isinstance(exc, IntegrityError | ProgrammingError):
        return False
    return isinstance(exc, _CONVERTED) or type(exc) is DatabaseError


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


def _foreign_tables(conn: Connection) -> list[str]:
    """Tables in a database with no trayline revision: someone else's database."""
    return sorted(inspect(conn).get_table_names())


def check_schema(engine: Engine) -> str | None:
    """The current revision; a :class:`StoreError` for a foreign or newer database."""
    head = head_revision()
    with engine.connect() as conn:
        revision = MigrationContext.configure(conn).get_current_revision()
        if revision is None:
            tables = _foreign_tables(conn)
            if tables:
                raise StoreError(
                    f"database {redact(str(engine.url))} holds tables that are not trayline's "
                    f"({', '.join(tables[:3])}…): use another --db"
                )
    if revision is not None and revision != head:
        script = ScriptDirectory.from_config(_alembic_config(engine))
        try:
            script.get_revision(revision)
        except CommandError:
            raise StoreError(
                f"database {redact(str(engine.url))} is at schema {revision}, newer than this "
                f"trayline knows (up to {head}): upgrade trayline"
            ) from None
    return revision


def _migrate(engine: Engine) -> None:
    """Bring the schema to head, safely when several processes start on a fresh database.

    PostgreSQL: an advisory lock serialises the migrating processes; the second
    finds the schema at head and does nothing. SQLite: the migration is one
    transaction; a process that loses the race for the write lock re-reads the
    revision and, finding head, does nothing.
    """
    head = head_revision()
    for attempt in range(20):
        try:
            if engine.dialect.name == "postgresql":
                with engine.connect() as lock:
                    lock.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
                    try:
                        if check_schema(engine) != head:
                            upgrade(engine)
                    finally:
                        lock.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
                        lock.commit()
            elif check_schema(engine) != head:
                upgrade(engine)
            return
        except (OperationalError, IntegrityError, ProgrammingError) as exc:
            if isinstance(exc, OperationalError) and not _is_busy(exc):
                raise
            if check_schema(engine) == head:
                return
            time.sleep(0.05 * (attempt + 1))
    upgrade(engine)


def _is_busy(exc: OperationalError) -> bool:
    text_ = str(exc.orig).lower()
    return "locked" in text_ or "busy" in text_ or "already exists" in text_


@dataclass
class Store:
    """An open store: the engine and a session factory bound to it."""

    engine: Engine
    url: str

    def __post_init__(self) -> None:
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error.

        A failure of the database itself (full disk, read-only file, server gone)
        comes out as :class:`StoreError` with one line and a next step; constraint
        violations stay SQLAlchemy's, for the repository that expects them.
        """
        try:
            with self._sessions() as session, session.begin():
                yield session
        except DatabaseError as exc:
            if _is_store_failure(exc):
                raise StoreError(describe_failure(exc, self.url, "cannot write to")) from None
            raise

    def new_session(self) -> Session:
        return self._sessions()

    def dispose(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        """``with open_store(...) as store:`` disposes of the engine however the block ends."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.dispose()


def open_store(url: str | None = None, *, migrate: bool = True) -> Store:
    """Open (and by default migrate) the store at ``url`` or the configured default."""
    resolved = database_url(url)
    engine = make_engine(resolved)
    try:
        if migrate:
            _migrate(engine)
        else:
            check_schema(engine)  # also proves the database answers
    except StoreError:
        engine.dispose()
        raise
    except (DatabaseError, InterfaceError, OSError) as exc:
        engine.dispose()
        raise StoreError(describe_failure(exc, resolved)) from None
    return Store(engine, resolved)
