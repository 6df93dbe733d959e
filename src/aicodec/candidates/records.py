"""Candidates in the experiment store."""

from __future__ import annotations

from sqlalchemy import select

from aicodec.candidates import code_hash
from aicodec.errors import ValidationError
from aicodec.store import CandidateRecord, Store

ORIGINS = ("seed", "llm", "mutation", "tuned", "manual")  # tuned: an evolve tuning iteration


def record_candidate(
    store: Store, source: str, name: str, origin: str = "manual", parent_id: int | None = None
) -> int:
    """The store id of a candidate, inserting it on first sight (identity: code hash)."""
    if origin not in ORIGINS:
        raise ValidationError(f"origin {origin!r} is not one of {', '.join(ORIGINS)}")
    digest = code_hash(source)
    return store.add_once(
        select(CandidateRecord).where(CandidateRecord.code_hash == digest),
        lambda: CandidateRecord(
            code_hash=digest, source=source, name=name, origin=origin, parent_id=parent_id
        ),
    )
