"""Clips, baseline encodes and rate-point choices.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _stamps() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "clips",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("content_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("start_frame", sa.Integer, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("frame_count", sa.Integer, nullable=False),
        sa.Column("fps_num", sa.Integer, nullable=False),
        sa.Column("fps_den", sa.Integer, nullable=False),
        _stamps(),
    )
    op.create_table(
        "baseline_encodes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("clip_id", sa.Integer, sa.ForeignKey("clips.id"), nullable=False, index=True),
        sa.Column("encoder", sa.String(64), nullable=False),
        sa.Column("encoder_version", sa.String(128), nullable=False),
        sa.Column("settings_hash", sa.String(64), nullable=False),
        sa.Column("settings_json", sa.Text, nullable=False),
        sa.Column("rate_option", sa.String(32), nullable=False),
        sa.Column("rate_value", sa.Integer, nullable=False),
        sa.Column("frames", sa.Integer, nullable=False),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("kbps", sa.Float, nullable=False),
        sa.Column("psnr_y", sa.Float, nullable=False),
        sa.Column("psnr_u", sa.Float, nullable=False),
        sa.Column("psnr_v", sa.Float, nullable=False),
        sa.Column("psnr_yuv", sa.Float, nullable=False),
        sa.Column("ssim_y", sa.Float, nullable=False),
        sa.Column("vmaf", sa.Float, nullable=True),
        sa.Column("encode_seconds", sa.Float, nullable=False),
        _stamps(),
        sa.UniqueConstraint(
            "clip_id",
            "encoder",
            "encoder_version",
            "settings_hash",
            "rate_value",
            name="uq_baseline_encode_point",
        ),
    )
    op.create_table(
        "rate_point_choices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("clip_id", sa.Integer, sa.ForeignKey("clips.id"), nullable=False, index=True),
        sa.Column("encoder", sa.String(64), nullable=False),
        sa.Column("encoder_version", sa.String(128), nullable=False),
        sa.Column("settings_hash", sa.String(64), nullable=False),
        sa.Column("targets_key", sa.String(64), nullable=False),
        sa.Column("rate_values_json", sa.Text, nullable=False),
        _stamps(),
        sa.UniqueConstraint(
            "clip_id",
            "encoder",
            "encoder_version",
            "settings_hash",
            "targets_key",
            name="uq_rate_point_choice",
        ),
    )


def downgrade() -> None:
    op.drop_table("rate_point_choices")
    op.drop_table("baseline_encodes")
    op.drop_table("clips")
