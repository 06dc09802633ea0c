"""flash records: what was written to each device (issue 9)

Revision ID: 0004_flash_records
Revises: 0003_job_identity_lease
Create Date: 2026-11-25 17:40:00

Placeholder that fixes the revision chain while parallel work fills it in.
"""

from __future__ import annotations

revision = "0004_flash_records"
down_revision = "0003_job_identity_lease"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
