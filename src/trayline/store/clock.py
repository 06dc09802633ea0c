"""The clock leases expire by: the database's own.

A lease is written as "held until T" and read as "expired if T < now". When
stations on several PCs share one PostgreSQL, each PC's clock would otherwise be
"now" for its own reads, and a CM line with no internet has no NTP: a PC whose
clock runs a minute ahead sees every other PC's job lease (60 s) as expired and
takes it while its holder is still sending. So on PostgreSQL "now" is the
server's ``clock_timestamp()``, read in the same transaction as the lease row,
and every PC compares against the same clock. SQLite is a file on one host's
disk, whose clock is the only one its processes have.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from trayline.store.models.base import utcnow

__all__ = ["database_now"]

_SERVER_NOW = text("SELECT clock_timestamp()")


def database_now(session: Session) -> datetime:
    """Aware UTC "now" by the database's clock (this host's on SQLite)."""
    if session.get_bind().dialect.name != "postgresql":
        return utcnow()
    now: datetime = session.execute(_SERVER_NOW).scalar_one()
    return now.astimezone(UTC)
