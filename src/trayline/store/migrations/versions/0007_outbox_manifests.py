"""the CM and the customer: unit batches, the outbox, trusted keys, imported manifests (issue 12)

Revision ID: 0007_outbox_manifests
Revises: 0006_web_users
Create Date: 2026-11-25 18:30:00

* ``units.batch`` (nullable, indexed): the shipment a ready unit is packed in,
  set by ``trayline export close-batch`` at the CM (and carried over by
  ``trayline import manifest`` at the customer);
* ``outbox_messages``: one row per unit reaching its final state, written in
  the same transaction as that state, delivered to the customer's webhook;
* ``trusted_keys`` and ``imported_manifests``: the customer's side of signed
  shipment manifests.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_outbox_manifests"
down_revision = "0006_web_users"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.add_column(sa.Column("batch", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_units_batch", ["batch"], unique=False)
    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["units.id"],
            name=op.f("fk_outbox_messages_unit_id_units"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_messages")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_outbox_messages_idempotency_key")),
        sa.UniqueConstraint("unit_id", "sequence", name="uq_outbox_messages_unit_sequence"),
    )
    op.create_index(
        "ix_outbox_messages_state_unit", "outbox_messages", ["state", "unit_id"], unique=False
    )
    op.create_table(
        "trusted_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trusted_keys")),
        sa.UniqueConstraint("key_id", name=op.f("uq_trusted_keys_key_id")),
    )
    op.create_table(
        "imported_manifests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("manifest_id", sa.String(length=64), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("batch", sa.String(length=64), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=True),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imported_manifests")),
        sa.UniqueConstraint("manifest_id", name=op.f("uq_imported_manifests_manifest_id")),
    )


def downgrade() -> None:
    op.drop_table("imported_manifests")
    op.drop_table("trusted_keys")
    op.drop_index("ix_outbox_messages_state_unit", table_name="outbox_messages")
    op.drop_table("outbox_messages")
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.drop_index("ix_units_batch")
        batch_op.drop_column("batch")
