"""Model calls as stored: the newest calls (those whose text contains a query), their
tokens and cost per batch (one generate or evolve run) and per purpose."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from aicodec.store import ModelCall, Store

CALL_FIELDS = (
    "id",
    "batch",
    "provider",
    "model",
    "purpose",
    "prompt_hash",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
    "latency_s",
    "retries",
    "error",
    "iteration",
    "created_at",
    "response_text",
    "system_prompt",
    "messages_json",
)


@dataclass(frozen=True)
class CallLog:
    """Logged model calls, newest first, and the tokens and cost of each run (batch)."""

    calls: list[dict[str, Any]]
    runs: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready log, as ``aicodec logs --json`` prints it."""
        return {"calls": self.calls, "runs": self.runs}


def plain(row: dict[str, Any]) -> dict[str, Any]:
    """A row with its datetimes as ISO text."""
    return {
        key: value.isoformat() if hasattr(value, "isoformat") else value
        for key, value in row.items()
    }


def model_calls(store: Store, last: int, query: str | None = None) -> list[dict[str, Any]]:
    """The ``last`` newest calls as plain values; with ``query``, only those whose prompt,
    answer or error contains it."""
    statement = select(ModelCall).order_by(ModelCall.id.desc()).limit(max(last, 0))
    if query:
        pattern = f"%{query}%"
        statement = statement.where(
            or_(
                ModelCall.messages_json.like(pattern),
                ModelCall.response_text.like(pattern),
                ModelCall.error.like(pattern),
            )
        )
    with store.session() as session:
        return [
            plain({name: getattr(call, name) for name in CALL_FIELDS})
            for call in session.scalars(statement)
        ]


def call_log(store: Store, last: int, query: str | None = None) -> CallLog:
    """``model_calls`` and the totals per run (all of them, newest first)."""
    return CallLog(model_calls(store, last, query), [plain(total) for total in call_totals(store)])


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
