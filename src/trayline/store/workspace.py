"""Where a store's files live beside it: the workspace folder of a database URL.

A line keeps a few files next to its database: firmware bundle blobs, the web
session key. For a SQLite store that is the database file's folder, so copying
the folder moves the whole line; a server database (PostgreSQL) has no folder,
so the working directory stands in. Parsing the URL is the store's business,
so services ask here instead of reading SQLAlchemy URLs themselves.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

__all__ = ["workspace_of"]


def workspace_of(database_url: str) -> Path:
    """The folder of a SQLite store's file, else the working directory (absolute)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(str(url.database)).resolve().parent
    return Path.cwd().resolve()
