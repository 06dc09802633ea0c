"""provisioning jobs: cloud + account identity, worker lease (issue 7)

Revision ID: 0003_job_identity_lease
Revises: 0002_firmware_bundles
Create Date: 2026-11-25 17:40:00

A job now belongs to a cloud (``api_url``) and an account (``account``: the
username the cloud reports for the token). Jobs made before this revision have
neither; their key did not include them, so running the same command again
starts a new job that does — the old one stays readable in ``provision status``.

The ``lease_*`` columns hold the one process allowed to work the job: a random
token, its host and pid, when it took the lease, and when the lease expires
unless its heartbeat renews it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_job_identity_lease"
down_revision = "0002_firmware_bundles"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("api_url", sa.String(length=255)),
    ("account", sa.String(length=254)),
    ("lease_token", sa.String(length=36)),
    ("lease_host", sa.String(length=255)),
    ("lease_pid", sa.Integer()),
    ("lease_since", sa.DateTime(timezone=True)),
    ("lease_expires_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("provisioning_jobs", schema=None) as batch_op:
        for name, type_ in _COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("provisioning_jobs", schema=None) as batch_op:
        for name, _type in reversed(_COLUMNS):
            batch_op.drop_column(name)
