"""the line: units, attempts, measurements, parts uniqueness (issue 11)

Revision ID: 0005_station
Revises: 0004_flash_records
Create Date: 2026-11-25 17:40:00

Placeholder that fixes the revision chain while parallel work fills it in.
"""

from __future__ import annotations

revision = "0005_station"
down_revision = "0004_flash_records"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
