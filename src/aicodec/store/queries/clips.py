"""The clips the store has measured, as the report and the prompts name them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from aicodec.store import ClipRecord


@dataclass(frozen=True)
class StoredClip:
    """A stored clip: its id, name, frame size (pixels) and frame count."""

    id: int
    name: str
    width: int
    height: int
    frame_count: int


def _stored_clip(row: ClipRecord) -> StoredClip:
    """A clip row as a ``StoredClip``."""
    return StoredClip(row.id, row.name, row.width, row.height, row.frame_count)


def stored_clip(session: Session, clip_id: int) -> StoredClip | None:
    """The stored clip with this id, if any."""
    row = session.get(ClipRecord, clip_id)
    return _stored_clip(row) if row is not None else None


def stored_clips(session: Session) -> dict[int, StoredClip]:
    """Every stored clip, by id."""
    return {row.id: _stored_clip(row) for row in session.scalars(select(ClipRecord))}
