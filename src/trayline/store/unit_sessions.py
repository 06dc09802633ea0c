"""Sessions that take turns: how a station's slot threads share one SQLite writer.

Split from :mod:`trayline.store.units` (which re-exports :class:`ThreadedStore`
and :func:`for_threads`) so each module stays small. PostgreSQL needs none of
this: its row locks and constraints do the work.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.orm import Session

from trayline.store.db import Store

__all__ = ["ThreadedStore", "for_threads", "writing"]


@contextmanager
def writing(store: Store) -> Iterator[Session]:
    """A session that holds SQLite's write lock from its first statement.

    SQLite's deferred ``BEGIN`` takes the write lock at the first write; a
    transaction that read first and then writes can fail at once with
    "database is locked" when another connection wrote in between (no busy
    wait is possible then). A no-op ``UPDATE`` as the first statement takes the
    lock up front, waiting on ``busy_timeout`` like any writer. PostgreSQL needs
    nothing: its row locks and constraints do the work.
    """
    if store.engine.dialect.name != "sqlite":
        with store.session() as session:
            yield session
        return
    with _sqlite_writer(store), store.session() as session:
        session.execute(text("UPDATE units SET id = id WHERE 0 = 1"))
        yield session


class ThreadedStore(Store):
    """A store whose sessions take turns, for one process running several slot threads on SQLite.

    Every session (any repository's: units, flash records, bundles) holds one
    re-entrant lock per engine while it is open. SQLite has one writer anyway;
    without this, threads that collide wait in SQLite's busy handler, which
    sleeps 1, 2, 5 … 100 ms at a time — far longer than the write. Sessions are
    short and never wait on another thread, so the turn is soon.
    """

    @contextmanager
    def session(self) -> Iterator[Session]:
        with _turns(self), super().session() as session:
            yield session


def for_threads(store: Store) -> Store:
    """``store`` as a :class:`ThreadedStore` when it is SQLite; PostgreSQL is returned as is."""
    if store.engine.dialect.name != "sqlite" or isinstance(store, ThreadedStore):
        return store
    return ThreadedStore(store.engine, store.url)


_TURNS: dict[int, threading.RLock] = {}


def _turns(store: Store) -> threading.RLock:
    with _WRITERS_GUARD:
        return _TURNS.setdefault(id(store.engine), threading.RLock())


_WRITERS: dict[int, threading.Lock] = {}
_WRITERS_GUARD = threading.Lock()


def _sqlite_writer(store: Store) -> threading.Lock:
    """One lock per engine: a station's slot threads queue for SQLite's single writer here.

    SQLite's own busy handler waits by sleeping (1, 2, 5 … 100 ms), so threads
    that collide on the write lock lose far more time than the write takes; a
    Python lock wakes the next writer the moment the last one commits. Other
    processes still meet at SQLite's lock, with ``busy_timeout``.
    """
    with _WRITERS_GUARD:
        return _WRITERS.setdefault(id(store.engine), threading.Lock())
