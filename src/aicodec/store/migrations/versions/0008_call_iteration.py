"""Each model call's evolve iteration (its number in the run whose batch the call is in),
so what an iteration spent on the model is read from the call log.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-12
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_calls") as batch:
        batch.add_column(sa.Column("iteration", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_calls") as batch:
        batch.drop_column("iteration")
