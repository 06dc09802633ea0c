"""flash records: what was written to each device (issue 9)

Revision ID: 0004_flash_records
Revises: 0003_job_identity_lease
Create Date: 2026-11-25 17:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_flash_records"
down_revision = "0003_job_identity_lease"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flash_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=24), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("bundle_name", sa.String(length=128), nullable=False),
        sa.Column("bundle_digest", sa.String(length=64), nullable=False),
        sa.Column("backend", sa.String(length=32), nullable=False),
        sa.Column("probe_id", sa.String(length=64), nullable=False),
        sa.Column("slot", sa.String(length=64), nullable=True),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("modules", sa.JSON(), nullable=False),
        sa.Column("bytes_written", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["units.id"],
            name=op.f("fk_flash_records_unit_id_units"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flash_records")),
    )
    op.create_index("ix_flash_records_device_started", "flash_records", ["device_id", "started_at"])
    op.create_index("ix_flash_records_unit_started", "flash_records", ["unit_id", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_flash_records_unit_started", table_name="flash_records")
    op.drop_index("ix_flash_records_device_started", table_name="flash_records")
    op.drop_table("flash_records")
