"""dashboard: first test attempts by outcome, then finish time (issue 13)

Revision ID: 0008_dashboard_first_outcome
Revises: 0007_outbox_manifests
Create Date: 2026-11-25 21:00:00

The dashboard's first-pass yield counts, for every hour of its window, the
first attempts that passed and those that failed: one index range count per
hour and outcome. With ``unit_attempts (number, outcome, finished_at)`` each
count reads only its own outcome's entries of the hour (with
``ix_unit_attempts_first``, which has the outcome after the time, both counts
read every first attempt of the hour: twice the window).
"""

from __future__ import annotations

from alembic import op

revision = "0008_dashboard_first_outcome"
down_revision = "0007_outbox_manifests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_unit_attempts_first_outcome",
        "unit_attempts",
        ["number", "outcome", "finished_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_unit_attempts_first_outcome", table_name="unit_attempts")
