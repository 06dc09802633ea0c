"""firmware bundles: bundles and their ordered module files (manifest)

Revision ID: 0002_firmware_bundles
Revises: 0001_initial
Create Date: 2026-11-24 21:35:39.782251
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_firmware_bundles"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "firmware_bundles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("sku", sa.String(length=16), nullable=False),
        sa.Column("line", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("system_version", sa.Integer(), nullable=True),
        sa.Column("device_os", sa.String(length=32), nullable=True),
        sa.Column("baseline_device_os", sa.String(length=32), nullable=True),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_firmware_bundles")),
        sa.UniqueConstraint("name", name=op.f("uq_firmware_bundles_name")),
    )
    with op.batch_alter_table("firmware_bundles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_firmware_bundles_digest"), ["digest"], unique=False)
        batch_op.create_index(batch_op.f("ix_firmware_bundles_line"), ["line"], unique=False)

    op.create_table(
        "firmware_bundle_modules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bundle_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("address", sa.BigInteger(), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("module_function", sa.Integer(), nullable=False),
        sa.Column("module_index", sa.Integer(), nullable=False),
        sa.Column("module_version", sa.Integer(), nullable=False),
        sa.Column("module_sha256", sa.String(length=64), nullable=False),
        sa.Column("flags", sa.Integer(), nullable=False),
        sa.Column("info", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bundle_id"],
            ["firmware_bundles.id"],
            name=op.f("fk_firmware_bundle_modules_bundle_id_firmware_bundles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_firmware_bundle_modules")),
        sa.UniqueConstraint(
            "bundle_id", "position", name=op.f("uq_firmware_bundle_modules_bundle_id")
        ),
    )
    with op.batch_alter_table("firmware_bundle_modules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_firmware_bundle_modules_bundle_id"), ["bundle_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("firmware_bundle_modules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_firmware_bundle_modules_bundle_id"))

    op.drop_table("firmware_bundle_modules")
    with op.batch_alter_table("firmware_bundles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_firmware_bundles_line"))
        batch_op.drop_index(batch_op.f("ix_firmware_bundles_digest"))

    op.drop_table("firmware_bundles")
