"""How long this disk takes to commit a write transaction, printed beside the devices and
station figures: both pay two or more flushed commits per unit, so a reader can tell a slow
disk from slow code."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import text

from trayline.store.db import open_store


def commit_latency(folder: Path) -> float:
    """Seconds per committed write transaction on this disk (SQLite, synchronous=FULL)."""
    store = open_store(f"sqlite:///{folder / 'fsync.db'}")
    with store.session() as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
    started = time.perf_counter()
    for i in range(50):
        with store.session() as session:
            session.execute(text("INSERT INTO t VALUES (:x)"), {"x": i})
    store.dispose()
    return (time.perf_counter() - started) / 50
