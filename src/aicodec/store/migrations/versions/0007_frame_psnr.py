"""Each run's per-frame PSNR-Y (a JSON list in dB), shown to the model in short.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("candidate_runs") as batch:
        batch.add_column(sa.Column("frame_psnr_y_json", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("candidate_runs") as batch:
        batch.drop_column("frame_psnr_y_json")
