"""Each evolve run's set-up time and total time (seconds, every session added).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evolution_runs") as batch:
        batch.add_column(sa.Column("setup_seconds", sa.Float, nullable=True))
        batch.add_column(sa.Column("total_seconds", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("evolution_runs") as batch:
        batch.drop_column("total_seconds")
        batch.drop_column("setup_seconds")
