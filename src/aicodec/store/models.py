"""Tables of the experiment store (SQLAlchemy 2 declarative models).

Schema changes go through the Alembic migrations in ``migrations/versions``; a new table
for candidates, runs, scores, model calls or adoptions is a new revision there.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utc_now() -> datetime:
    """The current time in UTC (timezone-aware)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every store table."""


class ClipRecord(Base):
    """A clip the lab has measured, identified by the content hash of its frames."""

    __tablename__ = "clips"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(Text)
    start_frame: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    frame_count: Mapped[int] = mapped_column(Integer)
    fps_num: Mapped[int] = mapped_column(Integer)
    fps_den: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class BaselineEncode(Base):
    """One rate point of a standard encoder on a clip, with the lab's own measurements."""

    __tablename__ = "baseline_encodes"
    __table_args__ = (
        UniqueConstraint(
            "clip_id",
            "encoder",
            "encoder_version",
            "settings_hash",
            "rate_value",
            name="uq_baseline_encode_point",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clip_id: Mapped[int] = mapped_column(ForeignKey("clips.id"), index=True)
    encoder: Mapped[str] = mapped_column(String(64))
    encoder_version: Mapped[str] = mapped_column(String(128))
    settings_hash: Mapped[str] = mapped_column(String(64))
    settings_json: Mapped[str] = mapped_column(Text)
    rate_option: Mapped[str] = mapped_column(String(32))
    rate_value: Mapped[int] = mapped_column(Integer)
    frames: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(Integer)
    kbps: Mapped[float] = mapped_column(Float)
    psnr_y: Mapped[float] = mapped_column(Float)
    psnr_u: Mapped[float] = mapped_column(Float)
    psnr_v: Mapped[float] = mapped_column(Float)
    psnr_yuv: Mapped[float] = mapped_column(Float)
    ssim_y: Mapped[float] = mapped_column(Float)
    vmaf: Mapped[float | None] = mapped_column(Float, nullable=True)
    encode_seconds: Mapped[float] = mapped_column(Float)
    decode_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class RatePointChoice(Base):
    """The rate values chosen for an encoder on a clip so its curve covers the anchor's range."""

    __tablename__ = "rate_point_choices"
    __table_args__ = (
        UniqueConstraint(
            "clip_id",
            "encoder",
            "encoder_version",
            "settings_hash",
            "targets_key",
            name="uq_rate_point_choice",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clip_id: Mapped[int] = mapped_column(ForeignKey("clips.id"), index=True)
    encoder: Mapped[str] = mapped_column(String(64))
    encoder_version: Mapped[str] = mapped_column(String(128))
    settings_hash: Mapped[str] = mapped_column(String(64))
    targets_key: Mapped[str] = mapped_column(String(64))
    rate_values_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class CandidateRecord(Base):
    """A codec candidate: its source, code hash, origin and parent."""

    __tablename__ = "candidates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(255))
    origin: Mapped[str] = mapped_column(String(32))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("candidates.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class RunRecord(Base):
    """One quality level of a candidate on a clip in the sandbox, with its measurements."""

    __tablename__ = "candidate_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    clip_id: Mapped[int] = mapped_column(ForeignKey("clips.id"), index=True)
    quality: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    isolation: Mapped[str] = mapped_column(Text)
    bytes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kbps: Mapped[float | None] = mapped_column(Float, nullable=True)
    encode_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    decode_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    encode_wall_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    decode_wall_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    deterministic: Mapped[bool | None] = mapped_column(nullable=True)
    bitstream_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decoded_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    psnr_y: Mapped[float | None] = mapped_column(Float, nullable=True)
    psnr_u: Mapped[float | None] = mapped_column(Float, nullable=True)
    psnr_v: Mapped[float | None] = mapped_column(Float, nullable=True)
    psnr_yuv: Mapped[float | None] = mapped_column(Float, nullable=True)
    ssim_y: Mapped[float | None] = mapped_column(Float, nullable=True)
    vmaf: Mapped[float | None] = mapped_column(Float, nullable=True)
    # JSON list of each frame's PSNR-Y in dB (null for a lossless frame); null before 0007
    frame_psnr_y_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class ScoreRecord(Base):
    """A scored candidate on a clip: the qualities used and its BD-rate against each encoder."""

    __tablename__ = "candidate_scores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    clip_id: Mapped[int] = mapped_column(ForeignKey("clips.id"), index=True)
    qualities: Mapped[str] = mapped_column(String(255))
    bd_rate_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class ModelCall(Base):
    """One call to a model: prompt, answer, tokens, cost, latency, retries, error."""

    __tablename__ = "model_calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch: Mapped[str] = mapped_column(String(64), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(128))
    purpose: Mapped[str] = mapped_column(String(32))
    prompt_hash: Mapped[str] = mapped_column(String(64), index=True)
    system_prompt: Mapped[str] = mapped_column(Text)
    messages_json: Mapped[str] = mapped_column(Text)
    response_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_read_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    latency_s: Mapped[float] = mapped_column(Float, default=0.0)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # the evolve iteration (its number in the run of this batch) the call was made for; null
    # outside evolve and for calls logged before 0008
    iteration: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class GenerationRecord(Base):
    """One attempt to make a candidate: from which parent, by which provider, with what outcome."""

    __tablename__ = "generations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch: Mapped[str] = mapped_column(String(64), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(128))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("candidates.id"), nullable=True)
    candidate_id: Mapped[int | None] = mapped_column(ForeignKey("candidates.id"), nullable=True)
    model_call_id: Mapped[int | None] = mapped_column(ForeignKey("model_calls.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    repairs: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class AdoptionRecord(Base):
    """One adoption decision: adopted or not, against what, why, and the commit and tag made."""

    __tablename__ = "adoptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"), index=True)
    compared_with: Mapped[str | None] = mapped_column(Text, nullable=True)
    adopted: Mapped[bool] = mapped_column()
    forced: Mapped[bool] = mapped_column()
    reason: Mapped[str] = mapped_column(Text)
    bd_rate_vs_best: Mapped[float | None] = mapped_column(Float, nullable=True)
    threshold: Mapped[float] = mapped_column(Float)
    commit: Mapped[str | None] = mapped_column(Text, nullable=True)
    tag: Mapped[str | None] = mapped_column(Text, nullable=True)
    clips: Mapped[str] = mapped_column(Text)
    qualities: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class EvolutionRun(Base):
    """One ``aicodec evolve`` run: its settings (enough to resume it) and how it ended."""

    __tablename__ = "evolution_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16))  # running interrupted finished stopped failed
    iterations_planned: Mapped[int] = mapped_column(Integer)
    provider: Mapped[str] = mapped_column(String(32))
    provider_reason: Mapped[str] = mapped_column(Text)
    seed: Mapped[int] = mapped_column(Integer)
    start_parent_id: Mapped[int] = mapped_column(ForeignKey("candidates.id"))
    config_json: Mapped[str] = mapped_column(Text)
    stop_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # who carries the run out; heartbeat_at is set while it does, None once it let go
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # seconds the lab worked on the run, every session added: its set-up (clips, ladders, the
    # starting codec's scores, before iteration 1) and in all (set-up included)
    setup_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    total_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)


class EvolutionIteration(Base):
    """One iteration of an evolve run: plan and prediction, parent, candidate, outcome."""

    __tablename__ = "evolution_iterations"
    __table_args__ = (UniqueConstraint("run_id", "number", name="uq_evolution_iteration"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("evolution_runs.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # running, done, failed, interrupted
    stage: Mapped[str] = mapped_column(String(16))  # plan, parent, generate, score, adopt, end
    planner: Mapped[str | None] = mapped_column(String(32), nullable=True)
    plan_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    predicted_bd_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("candidates.id"), nullable=True)
    parent_rule: Mapped[str | None] = mapped_column(Text, nullable=True)
    candidate_id: Mapped[int | None] = mapped_column(ForeignKey("candidates.id"), nullable=True)
    origin: Mapped[str | None] = mapped_column(String(32), nullable=True)
    failure_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    bd_rate_vs_parent: Mapped[float | None] = mapped_column(Float, nullable=True)
    bd_rate_yuv_vs_parent: Mapped[float | None] = mapped_column(Float, nullable=True)
    bd_rate_vs_x264: Mapped[float | None] = mapped_column(Float, nullable=True)
    decode_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    adopted: Mapped[bool] = mapped_column(default=False)
    adoption_id: Mapped[int | None] = mapped_column(ForeignKey("adoptions.id"), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    stage_seconds_json: Mapped[str] = mapped_column(Text, default="{}")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
