"""An evolve run as stored: its iterations (history), adoptions, cost, time and clips."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from aicodec.errors import EvolutionError
from aicodec.store import (
    AdoptionRecord,
    ClipRecord,
    EvolutionIteration,
    EvolutionRun,
    RunRecord,
    Store,
)

FINISHED = ("scored", "failed")  # an iteration with one of these statuses counts as done
UNFINISHED_RUNS = ("running", "interrupted")  # a run with one of these may be resumed


def iteration_rows(store: Store, run_id: int, upto: int | None = None) -> list[EvolutionIteration]:
    """A run's iterations (numbered ``upto`` or lower when given), by number, detached."""
    statement = select(EvolutionIteration).where(EvolutionIteration.run_id == run_id)
    if upto is not None:
        statement = statement.where(EvolutionIteration.number <= upto)
    with store.session() as session:
        rows = session.scalars(statement.order_by(EvolutionIteration.number)).all()
        session.expunge_all()
    return list(rows)


def run_adoptions(store: Store, run_id: int) -> list[dict[str, Any]]:
    """A run's adoptions in iteration order: iteration, candidate, tag, commit, BD-rate (%)."""
    with store.session() as session:
        found = session.execute(
            select(
                EvolutionIteration.number,
                AdoptionRecord.candidate_id,
                AdoptionRecord.tag,
                AdoptionRecord.commit,
                AdoptionRecord.bd_rate_vs_best,
            )
            .join(AdoptionRecord, AdoptionRecord.id == EvolutionIteration.adoption_id)
            .where(EvolutionIteration.run_id == run_id, EvolutionIteration.adopted.is_(True))
            .order_by(EvolutionIteration.number)
        ).all()
    keys = ("iteration", "candidate", "tag", "commit", "bd_rate_vs_previous")
    return [dict(zip(keys, row, strict=True)) for row in found]


def unfinished_run(store: Store) -> int:
    """The id of the last run that did not finish; EvolutionError when there is none."""
    with store.session() as session:
        run_id = session.scalar(
            select(EvolutionRun.id)
            .where(EvolutionRun.status.in_(UNFINISHED_RUNS))
            .order_by(EvolutionRun.id.desc())
        )
    if run_id is None:
        raise EvolutionError(
            "no unfinished evolve run in the store to resume; start one with aicodec evolve"
        )
    return run_id


def history(store: Store, run_id: int | None = None) -> list[dict[str, Any]]:
    """A run's iterations (default: the last run) with plan, prediction and outcome."""
    with store.session() as session:
        if run_id is None:
            run_id = session.scalar(select(EvolutionRun.id).order_by(EvolutionRun.id.desc()))
            if run_id is None:
                raise EvolutionError("the store holds no evolve run yet; start one with evolve")
        elif session.get(EvolutionRun, run_id) is None:
            raise EvolutionError(f"no evolve run {run_id} in the store")
        rows = session.scalars(
            select(EvolutionIteration)
            .where(EvolutionIteration.run_id == run_id)
            .order_by(EvolutionIteration.number)
        ).all()
        entries = []
        for row in rows:
            plan = json.loads(row.plan_json) if row.plan_json else {}
            entries.append(
                {
                    "iteration": row.number,
                    "parent": row.parent_id,
                    "origin": row.origin,
                    "status": row.status,
                    "bd_rate": row.bd_rate_vs_x264,
                    "adopted": row.adopted,
                    "reason": row.reason,
                    "candidate": row.candidate_id,
                    "bd_rate_vs_parent": row.bd_rate_vs_parent,
                    "bd_rate_yuv_vs_parent": row.bd_rate_yuv_vs_parent,
                    "predicted_bd_rate": row.predicted_bd_rate,
                    "confidence": row.confidence,
                    "failure_kind": row.failure_kind,
                    "planner": row.planner,
                    "hypothesis": plan.get("hypothesis"),
                    "parent_rule": row.parent_rule,
                    "cost_usd": row.cost_usd,
                    "stage_seconds": json.loads(row.stage_seconds_json),
                    "stage": row.stage,
                }
            )
    return entries


def may_be_best(entry: dict[str, Any]) -> bool:
    """Whether a history entry's codec may be the run's best: scored, and no worse than its
    parent on PSNR-YUV (BD-rate vs the parent <= 0)."""
    yuv = entry["bd_rate_yuv_vs_parent"]
    return entry["status"] == "scored" and yuv is not None and yuv <= 0


def stored_clip_id(store: Store, content_hash: str) -> int | None:
    """The store id of the clip with this content hash, if stored."""
    with store.session() as session:
        return session.scalar(select(ClipRecord.id).where(ClipRecord.content_hash == content_hash))


def failed_run_stage(store: Store, candidate_id: int) -> str:
    """The sandbox stage (encode, decode, ...) of a candidate's last failed run ("run" when
    none is stored); a point cancelled because another failed first does not count."""
    from aicodec.sandbox.execute import CANCELLED

    with store.session() as session:
        stage = session.scalar(
            select(RunRecord.stage)
            .where(
                RunRecord.candidate_id == candidate_id,
                RunRecord.status == "failed",
                RunRecord.stage != CANCELLED,
            )
            .order_by(RunRecord.id.desc())
        )
    return stage or "run"
