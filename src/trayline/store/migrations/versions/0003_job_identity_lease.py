"""provisioning jobs: cloud + account identity, worker lease (issue 7)

Revision ID: 0003_job_identity_lease
Revises: 0002_firmware_bundles
Create Date: 2026-11-25 17:40:00

Placeholder that fixes the revision chain while parallel work fills it in.
"""

from __future__ import annotations

revision = "0003_job_identity_lease"
down_revision = "0002_firmware_bundles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
