"""the line: units, attempts, measurements, parts uniqueness (issue 11)

Revision ID: 0005_station
Revises: 0004_flash_records
Create Date: 2026-11-25 17:40:00

Adds what the station needs on top of 0001's units/parts/events: a unit's
failure reason, station/slot, expected device ID, firmware and cloud records
and its lease; a part's ``unique_serial`` with a unique constraint on
``(kind, unique_serial)`` (the database, not the code, refuses a part linked
twice); and the attempts and measurements tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_station"
down_revision = "0004_flash_records"
branch_labels = None
depends_on = None


def _unit_columns() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("station", sa.String(length=64), nullable=True),
        sa.Column("slot", sa.String(length=64), nullable=True),
        sa.Column("expected_device_id", sa.String(length=24), nullable=True),
        sa.Column("firmware", sa.JSON(), nullable=True),
        sa.Column("cloud", sa.JSON(), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    )


def upgrade() -> None:
    with op.batch_alter_table("units", schema=None) as batch_op:
        for column in _unit_columns():
            batch_op.add_column(column)
        batch_op.create_index("ix_units_status", ["status"], unique=False)
    with op.batch_alter_table("parts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unique_serial", sa.String(length=128), nullable=True))
        batch_op.create_unique_constraint("uq_parts_kind_unique_serial", ["kind", "unique_serial"])
    op.create_table(
        "unit_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("station", sa.String(length=64), nullable=True),
        sa.Column("slot", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["units.id"],
            name=op.f("fk_unit_attempts_unit_id_units"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unit_attempts")),
        sa.UniqueConstraint("unit_id", "number", name="uq_unit_attempts_unit_number"),
    )
    with op.batch_alter_table("unit_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_unit_attempts_unit_id"), ["unit_id"], unique=False)
    op.create_table(
        "unit_measurements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("attempt_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("unit", sa.String(length=16), nullable=True),
        sa.Column("low", sa.Float(), nullable=True),
        sa.Column("high", sa.Float(), nullable=True),
        sa.Column("equals", sa.JSON(), nullable=True),
        sa.Column("regex", sa.String(length=256), nullable=True),
        sa.Column("verdict", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["unit_attempts.id"],
            name=op.f("fk_unit_measurements_attempt_id_unit_attempts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unit_measurements")),
    )
    with op.batch_alter_table("unit_measurements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_unit_measurements_attempt_id"), ["attempt_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("unit_measurements")
    op.drop_table("unit_attempts")
    with op.batch_alter_table("parts", schema=None) as batch_op:
        batch_op.drop_constraint("uq_parts_kind_unique_serial", type_="unique")
        batch_op.drop_column("unique_serial")
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.drop_index("ix_units_status")
        for column in reversed(_unit_columns()):
            batch_op.drop_column(column.name)
