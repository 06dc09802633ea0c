"""Alembic environment: runs migrations on the engine trayline hands it (no alembic.ini)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

import trayline.store.models  # noqa: F401  (registers every table)
from trayline.store.models.base import Base

engine = context.config.attributes["engine"]
assert isinstance(engine, Engine)

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
