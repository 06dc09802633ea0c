"""web: users, API tokens, and the indexes the web pages' queries need (issue 13)

Revision ID: 0006_web_users
Revises: 0005_station
Create Date: 2026-11-25 18:20:00

Tables ``web_users`` (name, role, argon2 password hash) and ``web_api_tokens``
(SHA-256 of each token). Indexes so that every page of ``trayline serve``
answers from an index at a million units:

* search by ICCID, IMEI and any part serial or lot (``units.iccid``,
  ``units.imei``, ``parts.part_serial``, ``parts.lot``) — serial and device ID
  are unique already;
* the dashboard's time windows, as covering indexes where the page groups:
  units by (status, updated_at); first test attempts by (number,
  finished_at, outcome); station/slot health by (finished_at, station, slot,
  outcome); failed measurements by (verdict, attempt_id), so only the rare
  failures are read; a unit's parts with what yield-per-batch groups by.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_web_users"
down_revision = "0005_station"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_units_iccid", "units", ["iccid"]),
    ("ix_units_imei", "units", ["imei"]),
    ("ix_units_status_updated_at", "units", ["status", "updated_at"]),
    ("ix_parts_part_serial", "parts", ["part_serial"]),
    ("ix_parts_lot", "parts", ["lot"]),
    ("ix_unit_attempts_first", "unit_attempts", ["number", "finished_at", "outcome", "unit_id"]),
    ("ix_unit_attempts_health", "unit_attempts", ["finished_at", "station", "slot", "outcome"]),
    ("ix_unit_measurements_verdict", "unit_measurements", ["verdict", "attempt_id"]),
    (
        "ix_parts_unit_batch",
        "parts",
        ["unit_id", "unique_serial", "kind", "lot", "part_serial"],
    ),
)


def upgrade() -> None:
    op.create_table(
        "web_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_users")),
        sa.UniqueConstraint("name", name=op.f("uq_web_users_name")),
    )
    op.create_table(
        "web_api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["web_users.id"],
            name=op.f("fk_web_api_tokens_user_id_web_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_api_tokens")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_web_api_tokens_token_sha256")),
    )
    op.create_index("ix_web_api_tokens_user_id", "web_api_tokens", ["user_id"], unique=False)
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_index("ix_web_api_tokens_user_id", table_name="web_api_tokens")
    op.drop_table("web_api_tokens")
    op.drop_table("web_users")
