"""Sessions that take turns: how a station's slot threads share one SQLite writer.

Split from :mod:`trayline.store.units` (which re-exports :class:`ThreadedStore`
and :func:`for_threads`) so each module stays small. PostgreSQL needs none of
this: its row locks and constraints do the work.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session

from trayline.store.db import Store, make_engine

__all__ = ["ThreadedStore", "for_threads", "relaxed", "writing"]


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


@contextmanager
def relaxed(store: Store) -> Iterator[Session]:
    """:func:`writing`, for a write that need not survive a power cut on its own.

    On SQLite the transaction commits with ``synchronous=NORMAL``: in WAL mode the
    commit is safe from a killed process (the WAL frames are in the OS's cache) but
    not yet flushed to the disk; the next commit with ``synchronous=FULL`` (every
    other transaction) flushes the WAL, and with it this one. Only a power cut or an
    OS crash before that can lose it — which also ends every process of this
    machine. So it is for writes that mean nothing once the process that made them
    is gone: a unit's lease (a lease whose owner died is abandoned and taken over at
    once). Never for an intent or a result: those must be on disk before a device is
    touched or a verdict is shown.

    The session comes from a second engine on the same file whose connections are
    NORMAL from the start (SQLite refuses to change ``synchronous`` inside a
    transaction), so no connection of the store's own engine is ever relaxed. It
    takes the same turns as the store's writers. PostgreSQL: an ordinary
    :func:`writing` session (the server outlives the station, so its leases must not
    be lost while the station runs).
    """
    if store.engine.dialect.name != "sqlite":
        with writing(store) as session:
            yield session
        return
    turns = _turns(store) if isinstance(store, ThreadedStore) else contextlib.nullcontext()
    with _sqlite_writer(store), turns, _relaxed_store(store).session() as session:
        session.execute(text("UPDATE units SET id = id WHERE 0 = 1"))
        yield session


_RELAXED: dict[int, Store] = {}


def _relaxed_store(store: Store) -> Store:
    with _WRITERS_GUARD:
        found = _RELAXED.get(id(store.engine))
        if found is not None and found.url != store.url:  # an engine id reused after GC
            found.dispose()
            found = None
        if found is None:
            engine = make_engine(store.url)
            event.listen(engine, "connect", _normal_sync)
            found = _RELAXED[id(store.engine)] = Store(engine, store.url)
            event.listen(store.engine, "engine_disposed", _dispose_relaxed)
        return found


def _normal_sync(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")  # after the store's own pragmas (FULL)
    cursor.close()


def _dispose_relaxed(engine: Engine) -> None:
    with _WRITERS_GUARD:
        found = _RELAXED.pop(id(engine), None)
    if found is not None:
        found.dispose()


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
