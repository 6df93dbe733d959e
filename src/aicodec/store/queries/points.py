"""Stored results: the one place that reads what the store knows of a candidate's quality.

A candidate's points (its latest successful run per clip and quality, as ``StoredPoint``),
its BD-rates against the ladder (its latest score per clip at a set of qualities), its
fitness (the mean BD-rate against x264 over clips), the ladder's own stored points on a clip
and the lab's best codec are read here and nowhere else, so every caller means the same
thing by them.

Qualities key results in one normal form, sorted and without repeats (``quality_key``).
A score stored before that, under the order the qualities were typed in, is found too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from aicodec.ffmpeg import ffmpeg_version
from aicodec.ladder import Ladder
from aicodec.ladder.spec import ladder_anchor
from aicodec.scoring.metrics import finite_or_none
from aicodec.settings import Settings
from aicodec.store import (
    AdoptionRecord,
    BaselineEncode,
    EvolutionIteration,
    RatePointChoice,
    RunRecord,
    ScoreRecord,
    Store,
)


def anchor_name() -> str:
    """The ladder's anchor (``anchor`` in the settings' ladder file, x264-medium as shipped):
    fitness is the mean BD-rate against it."""
    return ladder_anchor(Settings().ladder_file)


def normal_qualities(qualities: Iterable[int]) -> list[int]:
    """Qualities sorted ascending, each once."""
    return sorted({int(quality) for quality in qualities})


def quality_key(qualities: Iterable[int]) -> str:
    """The stored key of a set of qualities: ``20,40,60,80`` whatever order they came in."""
    return ",".join(str(quality) for quality in normal_qualities(qualities))


def parse_quality_key(key: str) -> list[int] | None:
    """The qualities of a stored key (old keys may be in any order); None when unreadable."""
    try:
        return normal_qualities(int(part) for part in key.split(",") if part.strip())
    except ValueError:
        return None


# --- a candidate's points ----------------------------------------------------------------------


@dataclass(frozen=True)
class StoredPoint:
    """One stored successful run of a candidate at a quality: bytes, kbit/s, PSNR (dB), SSIM-Y,
    VMAF, seconds (CPU and wall), whether its decodes agreed, and each frame's PSNR-Y (dB)."""

    quality: int
    bytes: int | None
    kbps: float | None
    psnr_y: float | None
    psnr_u: float | None
    psnr_v: float | None
    psnr_yuv: float | None
    ssim_y: float | None
    vmaf: float | None
    encode_seconds: float | None
    decode_seconds: float | None
    encode_wall_seconds: float | None
    decode_wall_seconds: float | None
    deterministic: bool | None
    frame_psnr_y: tuple[float, ...]  # inf for a lossless frame; empty when not stored

    def rd_dict(self) -> dict[str, Any]:
        """The point as ``candidate_points`` gives it: quality, kbit/s, dB, bytes, seconds."""
        return {
            "quality": self.quality,
            "kbps": self.kbps,
            "psnr_y": self.psnr_y,
            "psnr_yuv": self.psnr_yuv,
            "bytes": self.bytes,
            "decode_seconds": self.decode_seconds,
        }


def _frame_psnr_y(blob: str | None) -> tuple[float, ...]:
    """Stored per-frame PSNR-Y (dB; inf for a lossless frame); empty before the lab kept it."""
    if not blob:
        return ()
    return tuple(math.inf if value is None else float(value) for value in json.loads(blob))


def stored_point(row: RunRecord) -> StoredPoint:
    """A stored run's figures as a ``StoredPoint``."""
    return StoredPoint(
        quality=row.quality,
        bytes=row.bytes,
        kbps=row.kbps,
        psnr_y=row.psnr_y,
        psnr_u=row.psnr_u,
        psnr_v=row.psnr_v,
        psnr_yuv=row.psnr_yuv,
        ssim_y=row.ssim_y,
        vmaf=row.vmaf,
        encode_seconds=row.encode_seconds,
        decode_seconds=row.decode_seconds,
        encode_wall_seconds=row.encode_wall_seconds,
        decode_wall_seconds=row.decode_wall_seconds,
        deterministic=row.deterministic,
        frame_psnr_y=_frame_psnr_y(row.frame_psnr_y_json),
    )


def _measured(candidate_id: int) -> tuple[Any, ...]:
    """The conditions of a candidate's successful, measured runs."""
    return (
        RunRecord.candidate_id == candidate_id,
        RunRecord.status == "ok",
        RunRecord.psnr_y.is_not(None),
    )


def latest_ok_run(
    session: Session, candidate_id: int, clip_id: int, quality: int
) -> RunRecord | None:
    """The newest successful, measured stored run of a candidate on a clip at a quality."""
    return session.scalar(
        select(RunRecord)
        .where(*_measured(candidate_id), RunRecord.clip_id == clip_id, RunRecord.quality == quality)
        .order_by(RunRecord.id.desc())
    )


def latest_point(
    session: Session, candidate_id: int, clip_id: int, quality: int
) -> StoredPoint | None:
    """The newest successful, measured point of a candidate on a clip at a quality."""
    row = latest_ok_run(session, candidate_id, clip_id, quality)
    return stored_point(row) if row is not None else None


def stored_points(
    session: Session, candidate_id: int, clip_id: int, qualities: Sequence[int]
) -> tuple[list[StoredPoint], str | None]:
    """The latest successful, deterministic stored point per quality, or the points found up
    to the first problem and that problem."""
    points: list[StoredPoint] = []
    for quality in normal_qualities(qualities):
        point = latest_point(session, candidate_id, clip_id, quality)
        if point is None:
            return points, f"has no successful stored run at quality {quality} on clip {clip_id}"
        if point.deterministic is not True:
            return points, f"is not deterministic at quality {quality} on clip {clip_id}"
        points.append(point)
    return points, None


def candidate_points(
    session: Session, candidate_id: int, clip_id: int, qualities: Sequence[int]
) -> tuple[list[dict[str, Any]], str | None]:
    """``stored_points`` as plain RD points (kbps, dB, bytes, decode seconds), with the
    problem that cut them short, if any."""
    points, problem = stored_points(session, candidate_id, clip_id, qualities)
    return [point.rd_dict() for point in points], problem


def measured_points(session: Session, candidate_id: int) -> list[tuple[int, StoredPoint]]:
    """Every successful, measured stored run of a candidate, oldest first, with its clip id."""
    rows = session.scalars(select(RunRecord).where(*_measured(candidate_id)).order_by(RunRecord.id))
    return [(row.clip_id, stored_point(row)) for row in rows]


# --- BD-rates against the ladder ---------------------------------------------------------------


def _latest_scores(
    session: Session,
    qualities: Sequence[int],
    *,
    candidate_ids: Collection[int] | None = None,
    clip_ids: Collection[int] | None = None,
    hidden: Collection[int] = (),
) -> dict[tuple[int, int], dict[str, float | None]]:
    """Per (candidate, clip): the BD-rates of its latest score at these qualities."""
    wanted = normal_qualities(qualities)
    statement = select(ScoreRecord)
    if candidate_ids is not None:
        statement = statement.where(ScoreRecord.candidate_id.in_(list(candidate_ids)))
    if clip_ids is not None:
        statement = statement.where(ScoreRecord.clip_id.in_(list(clip_ids)))
    if hidden:
        statement = statement.where(ScoreRecord.candidate_id.not_in(list(hidden)))
    latest: dict[tuple[int, int], dict[str, float | None]] = {}
    for row in session.scalars(statement.order_by(ScoreRecord.id.desc())):
        key = (row.candidate_id, row.clip_id)
        if key in latest or parse_quality_key(row.qualities) != wanted:
            continue
        rates = _bd_rates(row.bd_rate_json)
        if rates is not None:
            latest[key] = rates
    return latest


def _bd_rates(blob: str) -> dict[str, float | None] | None:
    """A stored score's BD-rates per ladder encoder (percent; None where undefined)."""
    try:
        data = json.loads(blob)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    return {
        str(key): finite_or_none(value) if isinstance(value, int | float) else None
        for key, value in data.items()
    }


def ladder_bd_rates(
    session: Session, candidate_id: int, clip_id: int, qualities: Sequence[int]
) -> dict[str, float | None] | None:
    """BD-rates (percent) vs each ladder encoder from the candidate's latest stored score on
    the clip at these qualities; None when it has none."""
    found = _latest_scores(session, qualities, candidate_ids=[candidate_id], clip_ids=[clip_id])
    return found.get((candidate_id, clip_id))


def scored_clips(
    session: Session,
    candidate_id: int,
    clip_ids: Collection[int] | None,
    qualities: Sequence[int] | None,
    limit: int,
) -> dict[int, list[int]]:
    """The clips of a candidate's latest scores, newest first and at most ``limit`` (only
    ``clip_ids`` and only scores at ``qualities`` when given), each with its score's
    qualities (empty when unreadable)."""
    statement = select(ScoreRecord).where(ScoreRecord.candidate_id == candidate_id)
    if clip_ids is not None:
        statement = statement.where(ScoreRecord.clip_id.in_(list(clip_ids)))
    wanted = normal_qualities(qualities) if qualities is not None else None
    latest: dict[int, list[int]] = {}
    for score in session.scalars(statement.order_by(ScoreRecord.id.desc())):
        found = parse_quality_key(score.qualities)
        if wanted is not None and found != wanted:
            continue
        if score.clip_id not in latest and len(latest) < limit:
            latest[score.clip_id] = found or []
    return latest


def stored_ladder_points(
    session: Session, ladder: Ladder, clip_id: int
) -> dict[str, list[BaselineEncode]]:
    """The ladder's stored curve on a clip, per encoder (anchor first, by kbit/s): the
    anchor's rate points and each other encoder's chosen ones, as ``run_ladder`` uses
    them; encoders with nothing stored are left out. Encodes nothing."""
    version = ffmpeg_version()
    curves: dict[str, list[BaselineEncode]] = {}
    for spec in ladder.select(None):
        digest = spec.settings_hash(ladder.threads)
        key = (
            BaselineEncode.clip_id == clip_id,
            BaselineEncode.encoder == spec.name,
            BaselineEncode.encoder_version == version,
            BaselineEncode.settings_hash == digest,
        )
        if spec.name == ladder.anchor:
            rates = list(ladder.anchor_rates)
        else:
            chosen = session.scalar(
                select(RatePointChoice.rate_values_json)
                .where(
                    RatePointChoice.clip_id == clip_id,
                    RatePointChoice.encoder == spec.name,
                    RatePointChoice.encoder_version == version,
                    RatePointChoice.settings_hash == digest,
                )
                .order_by(RatePointChoice.id.desc())
            )
            rates = [int(rate) for rate in json.loads(chosen)] if chosen else []
        where = (*key, BaselineEncode.rate_value.in_(rates))
        rows = list(session.scalars(select(BaselineEncode).where(*where)))
        if rows:
            curves[spec.name] = sorted(rows, key=lambda row: row.kbps)
    return curves


# --- fitness and the best codec ----------------------------------------------------------------


def fitness(
    store: Store, candidate_id: int, clip_ids: Sequence[int], qualities: Sequence[int]
) -> float | None:
    """Mean BD-rate (percent) vs the ladder's anchor (x264) of a candidate's latest scores
    on the clips at these qualities; None unless every clip has one that is defined."""
    if not clip_ids:
        return None
    with store.session() as session:
        scores = _latest_scores(session, qualities, candidate_ids=[candidate_id], clip_ids=clip_ids)
    anchor = anchor_name()
    values = [(scores.get((candidate_id, clip_id)) or {}).get(anchor) for clip_id in clip_ids]
    if any(value is None for value in values):
        return None
    return sum(values) / len(values)  # type: ignore[arg-type]


def keeps_chroma(bd_rate_yuv_vs_parent: float | None) -> bool:
    """The one rule a codec must meet to be a best: an evolve iteration that scored it found
    it no worse than its parent on PSNR-YUV (BD-rate vs the parent, percent, <= 0), so a
    luma gain paid for with chroma never counts."""
    return bd_rate_yuv_vs_parent is not None and bd_rate_yuv_vs_parent <= 0


def _chroma_traders(session: Session) -> set[int]:
    """The candidates an evolve iteration scored that fail ``keeps_chroma``."""
    rows = session.execute(
        select(EvolutionIteration.candidate_id, EvolutionIteration.bd_rate_yuv_vs_parent).where(
            EvolutionIteration.status == "scored", EvolutionIteration.candidate_id.is_not(None)
        )
    ).all()
    return {found for found, yuv in rows if found is not None and not keeps_chroma(yuv)}


def best_candidate(
    store: Store,
    qualities: Sequence[int],
    clip_ids: Collection[int] | None = None,
    hidden: Collection[int] = (),
) -> int | None:
    """The scored candidate with the lowest fitness at these qualities, leaving out the
    ``hidden`` ones and those an evolve iteration found worse than their parent on PSNR-YUV
    (``keeps_chroma``, the rule a run's best meets too); ties go to the older candidate.

    With ``clip_ids``, only candidates with a defined score on every one of those clips
    compete; without, each candidate's fitness is over the clips it was scored on.
    """
    with store.session() as session:
        scores = _latest_scores(session, qualities, clip_ids=clip_ids, hidden=hidden)
        traders = _chroma_traders(session)
    anchor = anchor_name()
    per_candidate: dict[int, list[float | None]] = {}
    for (candidate_id, _), rates in scores.items():
        per_candidate.setdefault(candidate_id, []).append(rates.get(anchor))
    means: dict[int, float] = {}
    for candidate_id, values in per_candidate.items():
        complete = clip_ids is None or len(values) == len(set(clip_ids))
        defined = [value for value in values if value is not None]
        if complete and defined and len(defined) == len(values) and candidate_id not in traders:
            means[candidate_id] = sum(defined) / len(defined)
    if not means:
        return None
    return min(means, key=lambda key: (means[key], key))


def adopted_best(session: Session) -> AdoptionRecord | None:
    """The decision that adopted the current best codec (the last adoption), if any."""
    return session.scalar(
        select(AdoptionRecord)
        .where(AdoptionRecord.adopted.is_(True))
        .order_by(AdoptionRecord.id.desc())
    )


def current_best(store: Store) -> int | None:
    """The last adopted candidate's id, or None while nothing is adopted."""
    with store.session() as session:
        found = adopted_best(session)
        return found.candidate_id if found is not None else None
