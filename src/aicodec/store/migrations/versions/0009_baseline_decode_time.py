"""Each standard-encoder point's decode time (seconds), so suites compare decode times with
the anchor's; a point stored without it is encoded again when it is next needed.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("baseline_encodes") as batch:
        batch.add_column(sa.Column("decode_seconds", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("baseline_encodes") as batch:
        batch.drop_column("decode_seconds")
