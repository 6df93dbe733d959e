"""Candidates as stored: their record and source, lineage, the iterations that made them,
the attempts to generate them, and the runs and generations that failed."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aicodec.store import CandidateRecord, EvolutionIteration, GenerationRecord, RunRecord, Store


@dataclass(frozen=True)
class StoredCandidate:
    """A stored candidate: id, file name, origin, parent, source code and when it was stored."""

    id: int
    name: str
    origin: str
    parent_id: int | None
    source: str
    created_at: datetime


def _stored_candidate(row: CandidateRecord) -> StoredCandidate:
    """A candidate row as a ``StoredCandidate``."""
    return StoredCandidate(row.id, row.name, row.origin, row.parent_id, row.source, row.created_at)


# --- a candidate's record and lineage ------------------------------------------------------------


def stored_candidate(session: Session, candidate_id: int) -> StoredCandidate | None:
    """The stored candidate with this id, if any."""
    row = session.get(CandidateRecord, candidate_id)
    return _stored_candidate(row) if row is not None else None


def find_candidate(store: Store, candidate_id: int) -> StoredCandidate | None:
    """``stored_candidate`` in a session of its own."""
    with store.session() as session:
        return stored_candidate(session, candidate_id)


def stored_candidates(
    session: Session, candidate_ids: Collection[int]
) -> dict[int, StoredCandidate]:
    """The stored candidates among these ids, by id."""
    rows = session.scalars(
        select(CandidateRecord).where(CandidateRecord.id.in_(list(candidate_ids)))
    )
    return {row.id: _stored_candidate(row) for row in rows}


def candidate_ids(store: Store) -> list[int]:
    """Every stored candidate's id, oldest first."""
    with store.session() as session:
        return list(session.scalars(select(CandidateRecord.id).order_by(CandidateRecord.id)))


def candidate_with_code(store: Store, digest: str) -> int | None:
    """The id of the stored candidate whose code hash is ``digest``, if any."""
    with store.session() as session:
        return session.scalar(select(CandidateRecord.id).where(CandidateRecord.code_hash == digest))


def child_ids(session: Session, candidate_id: int) -> list[int]:
    """The ids of the candidates bred from this one, oldest first."""
    return list(
        session.scalars(
            select(CandidateRecord.id)
            .where(CandidateRecord.parent_id == candidate_id)
            .order_by(CandidateRecord.id)
        )
    )


def candidate_iterations(session: Session, candidate_id: int) -> list[tuple[int, int, str, bool]]:
    """The evolve iterations that made this candidate, in run and iteration order: (run,
    iteration, status, adopted)."""
    rows = session.scalars(
        select(EvolutionIteration)
        .where(EvolutionIteration.candidate_id == candidate_id)
        .order_by(EvolutionIteration.run_id, EvolutionIteration.number)
    ).all()
    return [(row.run_id, row.number, row.status, row.adopted) for row in rows]


# --- attempts to generate candidates -------------------------------------------------------------


def generation_rounds(store: Store, parent_id: int | None, provider: str) -> int:
    """How many generation attempts ``provider`` has made from this parent (None: from no
    stored parent)."""
    with store.session() as session:
        rounds = session.scalar(
            select(func.count(GenerationRecord.id)).where(
                GenerationRecord.parent_id == parent_id,
                GenerationRecord.provider == provider,
            )
        )
    return int(rounds or 0)


def generation_note(session: Session, candidate_id: int) -> str | None:
    """What the generation that made this candidate said of its change, if it said anything."""
    return session.scalar(
        select(GenerationRecord.reason).where(
            GenerationRecord.candidate_id == candidate_id,
            GenerationRecord.status == "new",
        )
    )


# --- what failed --------------------------------------------------------------------------------


def failed_runs(
    session: Session, clip_ids: Collection[int] | None, hidden: Collection[int], limit: int
) -> list[RunRecord]:
    """The newest failed runs, at most ``limit`` (on ``clip_ids`` only when given, never of
    the ``hidden`` candidates)."""
    where = [RunRecord.status == "failed"]
    if clip_ids is not None:
        where.append(RunRecord.clip_id.in_(list(clip_ids)))
    if hidden:
        where.append(RunRecord.candidate_id.not_in(list(hidden)))
    return list(
        session.scalars(select(RunRecord).where(*where).order_by(RunRecord.id.desc()).limit(limit))
    )


def failed_generations(session: Session, limit: int) -> list[GenerationRecord]:
    """The newest generation attempts that gave invalid code or none, at most ``limit``."""
    return list(
        session.scalars(
            select(GenerationRecord)
            .where(GenerationRecord.status.in_(("invalid", "failed")))
            .order_by(GenerationRecord.id.desc())
            .limit(limit)
        )
    )
