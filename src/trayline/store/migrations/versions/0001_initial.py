"""initial schema: units, parts, events, provisioning journal, cloud audit

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-24 21:28:15.305949
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "provisioning_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("product", sa.String(length=64), nullable=False),
        sa.Column("group_name", sa.String(length=64), nullable=True),
        sa.Column("name_mode", sa.String(length=16), nullable=False),
        sa.Column("claim_mode", sa.String(length=16), nullable=False),
        sa.Column("claim_user", sa.String(length=254), nullable=True),
        sa.Column("input_path", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("group_status", sa.String(length=16), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provisioning_jobs")),
        sa.UniqueConstraint("key", name=op.f("uq_provisioning_jobs_key")),
    )
    op.create_table(
        "serial_lookups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("serial_number", sa.String(length=15), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serial_lookups")),
    )
    with op.batch_alter_table("serial_lookups", schema=None) as batch_op:
        batch_op.create_index("ix_serial_lookups_account_at", ["account", "at"], unique=False)

    op.create_table(
        "units",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("serial_number", sa.String(length=15), nullable=False),
        sa.Column("device_id", sa.String(length=24), nullable=True),
        sa.Column("sku", sa.String(length=16), nullable=True),
        sa.Column("iccid", sa.String(length=21), nullable=True),
        sa.Column("imei", sa.String(length=15), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_units")),
        sa.UniqueConstraint("device_id", name=op.f("uq_units_device_id")),
        sa.UniqueConstraint("serial_number", name=op.f("uq_units_serial_number")),
    )
    op.create_table(
        "cloud_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path_template", sa.String(length=200), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Double(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("error_kind", sa.String(length=32), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["provisioning_jobs.id"],
            name=op.f("fk_cloud_calls_job_id_provisioning_jobs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cloud_calls")),
    )
    with op.batch_alter_table("cloud_calls", schema=None) as batch_op:
        batch_op.create_index("ix_cloud_calls_at", ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_cloud_calls_job_id"), ["job_id"], unique=False)

    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("device_id", sa.String(length=24), nullable=True),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_events_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_device_at", ["device_id", "at"], unique=False)
        batch_op.create_index("ix_events_unit_at", ["unit_id", "at"], unique=False)

    op.create_table(
        "parts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("part_number", sa.String(length=128), nullable=True),
        sa.Column("part_serial", sa.String(length=128), nullable=True),
        sa.Column("lot", sa.String(length=128), nullable=True),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_parts_unit_id_units"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parts")),
    )
    with op.batch_alter_table("parts", schema=None) as batch_op:
        batch_op.create_index("ix_parts_kind_part_serial", ["kind", "part_serial"], unique=False)
        batch_op.create_index(batch_op.f("ix_parts_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "provisioning_devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(length=32), nullable=False),
        sa.Column("id_kind", sa.String(length=16), nullable=False),
        sa.Column("device_id", sa.String(length=24), nullable=True),
        sa.Column("serial_number", sa.String(length=15), nullable=True),
        sa.Column("iccid", sa.String(length=21), nullable=True),
        sa.Column("imported", sa.String(length=16), nullable=False),
        sa.Column("grouped", sa.String(length=16), nullable=False),
        sa.Column("named", sa.String(length=16), nullable=False),
        sa.Column("claimed", sa.String(length=16), nullable=False),
        sa.Column("verified", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failure", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["provisioning_jobs.id"],
            name=op.f("fk_provisioning_devices_job_id_provisioning_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provisioning_devices")),
        sa.UniqueConstraint("job_id", "identifier", name="uq_provisioning_devices_job_identifier"),
    )
    with op.batch_alter_table("provisioning_devices", schema=None) as batch_op:
        batch_op.create_index(
            "ix_provisioning_devices_job_device", ["job_id", "device_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("provisioning_devices", schema=None) as batch_op:
        batch_op.drop_index("ix_provisioning_devices_job_device")

    op.drop_table("provisioning_devices")
    with op.batch_alter_table("parts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_parts_unit_id"))
        batch_op.drop_index("ix_parts_kind_part_serial")

    op.drop_table("parts")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_unit_at")
        batch_op.drop_index("ix_events_device_at")

    op.drop_table("events")
    with op.batch_alter_table("cloud_calls", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cloud_calls_job_id"))
        batch_op.drop_index("ix_cloud_calls_at")

    op.drop_table("cloud_calls")
    op.drop_table("units")
    with op.batch_alter_table("serial_lookups", schema=None) as batch_op:
        batch_op.drop_index("ix_serial_lookups_account_at")

    op.drop_table("serial_lookups")
    op.drop_table("provisioning_jobs")
