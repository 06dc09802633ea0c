"""Shared fixtures: stores on SQLite and PostgreSQL, and the PostgreSQL availability rule.

Store tests take the ``store`` fixture, which runs each test twice: on a fresh
SQLite file and on a fresh PostgreSQL database created for this test session on
``TRAYLINE_TEST_PG_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``,
used only as the admin connection). Without a reachable server those runs are
skipped with a notice at the end of the run, unless ``TRAYLINE_REQUIRE_PG=1``, in
which case they fail: CI sets it so a missing server can never pass silently.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from trayline.store.db import Store, open_store

PG_ADMIN_URL = os.environ.get(
    "TRAYLINE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_PG = os.environ.get("TRAYLINE_REQUIRE_PG") == "1"
_pg_problem: list[str] = []


def _pg_reachable() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:
        return str(exc).splitlines()[0]
    return None


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A database of its own on the PostgreSQL server, dropped after the session."""
    problem = _pg_reachable()
    if problem is not None:
        message = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {problem}"
        if REQUIRE_PG:
            pytest.fail(f"{message} (TRAYLINE_REQUIRE_PG=1)")
        _pg_problem.append(message)
        pytest.skip(message)
    name = f"trayline_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """The session's PostgreSQL database, emptied before each test."""
    engine = create_engine(pg_server_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    yield pg_server_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'trayline.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'trayline.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """An open, migrated store on each backend."""
    opened = open_store(db_url)
    try:
        yield opened
    finally:
        opened.dispose()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _pg_problem:
        terminalreporter.write_sep("!", "PostgreSQL store tests were SKIPPED", yellow=True)
        terminalreporter.write_line(_pg_problem[0])
        terminalreporter.write_line(
            "Start PostgreSQL or set TRAYLINE_REQUIRE_PG=1 to make this fail."
        )
