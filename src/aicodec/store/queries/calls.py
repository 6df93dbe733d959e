"""Model calls as stored: their tokens and cost per batch and per purpose."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aicodec.store import ModelCall, Store


def call_totals(store: Store) -> list[dict[str, object]]:
    """Tokens and cost (US dollars) per batch (one generate or evolve run), newest first."""
    with store.session() as session:
        rows = session.execute(
            select(
                ModelCall.batch,
                func.count(ModelCall.id),
                func.sum(ModelCall.input_tokens),
                func.sum(ModelCall.output_tokens),
                func.sum(ModelCall.cache_read_tokens),
                func.sum(ModelCall.cost_usd),
                func.min(ModelCall.created_at),
            )
            .group_by(ModelCall.batch)
            .order_by(func.min(ModelCall.created_at).desc())
        ).all()
    keys = (
        "batch",
        "calls",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cost_usd",
        "started",
    )
    return [dict(zip(keys, row, strict=True)) for row in rows]


def calls_by_purpose(session: Session, batch: str) -> dict[str, tuple[int, float]]:
    """A batch's model calls per purpose (plan, generate, ...): their count and cost (US
    dollars)."""
    rows = session.execute(
        select(ModelCall.purpose, func.count(), func.coalesce(func.sum(ModelCall.cost_usd), 0.0))
        .where(ModelCall.batch == batch)
        .group_by(ModelCall.purpose)
    ).all()
    return {purpose: (int(count), float(cost)) for purpose, count, cost in rows}
