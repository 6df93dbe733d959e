"""Adoption decisions of candidates as the lab's best codec.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "adoptions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "candidate_id", sa.Integer, sa.ForeignKey("candidates.id"), nullable=False, index=True
        ),
        sa.Column("compared_with", sa.Text, nullable=True),
        sa.Column("adopted", sa.Boolean, nullable=False),
        sa.Column("forced", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("bd_rate_vs_best", sa.Float, nullable=True),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("commit", sa.Text, nullable=True),
        sa.Column("tag", sa.Text, nullable=True),
        sa.Column("clips", sa.Text, nullable=False),
        sa.Column("qualities", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("adoptions")
