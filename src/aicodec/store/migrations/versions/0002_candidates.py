"""Candidates, their sandbox runs with measurements, and their scores.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FLOAT_COLUMNS = (
    "kbps",
    "encode_seconds",
    "decode_seconds",
    "encode_wall_seconds",
    "decode_wall_seconds",
    "psnr_y",
    "psnr_u",
    "psnr_v",
    "psnr_yuv",
    "ssim_y",
    "vmaf",
)


def upgrade() -> None:
    op.create_table(
        "candidates",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("origin", sa.String(32), nullable=False),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("candidates.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "candidate_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "candidate_id", sa.Integer, sa.ForeignKey("candidates.id"), nullable=False, index=True
        ),
        sa.Column("clip_id", sa.Integer, sa.ForeignKey("clips.id"), nullable=False, index=True),
        sa.Column("quality", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(32), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("isolation", sa.Text, nullable=False),
        sa.Column("bytes", sa.Integer, nullable=True),
        *(sa.Column(name, sa.Float, nullable=True) for name in FLOAT_COLUMNS[:5]),
        sa.Column("deterministic", sa.Boolean, nullable=True),
        sa.Column("bitstream_sha256", sa.String(64), nullable=True),
        sa.Column("decoded_sha256", sa.String(64), nullable=True),
        *(sa.Column(name, sa.Float, nullable=True) for name in FLOAT_COLUMNS[5:]),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "candidate_scores",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "candidate_id", sa.Integer, sa.ForeignKey("candidates.id"), nullable=False, index=True
        ),
        sa.Column("clip_id", sa.Integer, sa.ForeignKey("clips.id"), nullable=False, index=True),
        sa.Column("qualities", sa.String(255), nullable=False),
        sa.Column("bd_rate_json", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("candidate_scores")
    op.drop_table("candidate_runs")
    op.drop_table("candidates")
