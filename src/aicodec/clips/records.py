"""A clip's row in the store: the same frames (by content hash) are stored once."""

from __future__ import annotations

from sqlalchemy import select

from aicodec.clips import Clip
from aicodec.store import ClipRecord, Store


def record_clip(store: Store, clip: Clip) -> int:
    """The store id of ``clip``, inserting it on first sight."""
    frames = clip.frames
    return store.add_once(
        select(ClipRecord).where(ClipRecord.content_hash == clip.content_hash),
        lambda: ClipRecord(
            content_hash=clip.content_hash,
            name=clip.name,
            source=clip.source,
            start_frame=clip.start,
            width=frames.width,
            height=frames.height,
            frame_count=frames.count,
            fps_num=frames.fps.numerator,
            fps_den=frames.fps.denominator,
        ),
    )
