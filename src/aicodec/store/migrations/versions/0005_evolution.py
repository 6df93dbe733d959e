"""Evolve runs and their iterations (plan, prediction, parent, candidate, outcome).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evolution_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("batch", sa.String(64), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("iterations_planned", sa.Integer, nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("provider_reason", sa.Text, nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("start_parent_id", sa.Integer, sa.ForeignKey("candidates.id"), nullable=False),
        sa.Column("config_json", sa.Text, nullable=False),
        sa.Column("stop_reason", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "evolution_iterations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "run_id", sa.Integer, sa.ForeignKey("evolution_runs.id"), nullable=False, index=True
        ),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("planner", sa.String(32), nullable=True),
        sa.Column("plan_json", sa.Text, nullable=True),
        sa.Column("predicted_bd_rate", sa.Float, nullable=True),
        sa.Column("confidence", sa.Float, nullable=True),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("candidates.id"), nullable=True),
        sa.Column("parent_rule", sa.Text, nullable=True),
        sa.Column("candidate_id", sa.Integer, sa.ForeignKey("candidates.id"), nullable=True),
        sa.Column("origin", sa.String(32), nullable=True),
        sa.Column("failure_kind", sa.String(32), nullable=True),
        sa.Column("bd_rate_vs_parent", sa.Float, nullable=True),
        sa.Column("bd_rate_yuv_vs_parent", sa.Float, nullable=True),
        sa.Column("bd_rate_vs_x264", sa.Float, nullable=True),
        sa.Column("decode_seconds", sa.Float, nullable=True),
        sa.Column("adopted", sa.Boolean, nullable=False),
        sa.Column("adoption_id", sa.Integer, sa.ForeignKey("adoptions.id"), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("stage_seconds_json", sa.Text, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("run_id", "number", name="uq_evolution_iteration"),
    )


def downgrade() -> None:
    op.drop_table("evolution_iterations")
    op.drop_table("evolution_runs")
