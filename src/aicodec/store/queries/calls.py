"""The model-call log: the newest calls (those whose text contains a query) and the totals
per run, as ``aicodec logs`` shows them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select

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
    from aicodec.generation.generate import call_totals

    return CallLog(model_calls(store, last, query), [plain(total) for total in call_totals(store)])
