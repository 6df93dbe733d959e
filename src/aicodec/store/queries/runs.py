"""Evolve runs as stored: the list of runs, a run's iterations (history), plans, adoptions
and tags, its planners' predictions, and the clips it stored."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aicodec.errors import EvolutionError
from aicodec.store import (
    AdoptionRecord,
    ClipRecord,
    EvolutionIteration,
    EvolutionRun,
    RunRecord,
    Store,
)
from aicodec.store.queries.points import keeps_chroma

FINISHED = ("scored", "failed")  # an iteration with one of these statuses counts as done
UNFINISHED_RUNS = ("running", "interrupted")  # a run with one of these may be resumed


@dataclass
class RunListing:
    """One row of the store's list of runs."""

    run_id: int
    status: str
    provider: str
    created_at: datetime
    planned: int
    iterations: int
    adoptions: int


@dataclass(frozen=True)
class RunPredictions:
    """A run's stored config (JSON) and its iterations with both a prediction and a
    measurement: (iteration, planner, predicted, measured), BD-rate vs the parent, percent."""

    run_id: int
    config_json: str
    rows: list[tuple[int, str | None, float, float]]


# --- the store's runs ---------------------------------------------------------------------------


def run_listing(store: Store) -> list[RunListing]:
    """Every evolve run in the store, newest first, with its iteration and adoption counts."""
    with store.session() as session:
        counts = dict(
            session.execute(
                select(EvolutionIteration.run_id, func.count()).group_by(EvolutionIteration.run_id)
            ).all()
        )
        adopted = dict(
            session.execute(
                select(EvolutionIteration.run_id, func.count())
                .where(EvolutionIteration.adopted.is_(True))
                .group_by(EvolutionIteration.run_id)
            ).all()
        )
        runs = session.scalars(select(EvolutionRun).order_by(EvolutionRun.id.desc())).all()
        return [
            RunListing(
                run.id,
                run.status,
                run.provider,
                run.created_at,
                run.iterations_planned,
                counts.get(run.id, 0),
                adopted.get(run.id, 0),
            )
            for run in runs
        ]


def evolution_run(session: Session, run_id: int) -> EvolutionRun | None:
    """The stored evolve run with this id, if any."""
    return session.get(EvolutionRun, run_id)


def run_ids(session: Session) -> list[int]:
    """The ids of the store's evolve runs, oldest first."""
    return list(session.scalars(select(EvolutionRun.id).order_by(EvolutionRun.id)).all())


# --- a run's iterations -------------------------------------------------------------------------


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


def adoption_tags(session: Session, run_id: int) -> dict[int, str]:
    """The git tag of each adopted iteration of the run, by iteration number."""
    rows = session.execute(
        select(EvolutionIteration.number, AdoptionRecord.tag)
        .join(AdoptionRecord, AdoptionRecord.id == EvolutionIteration.adoption_id)
        .where(EvolutionIteration.run_id == run_id, EvolutionIteration.adopted.is_(True))
    ).all()
    return {number: tag for number, tag in rows if tag}


def iteration_plans(session: Session, run_id: int) -> dict[int, dict[str, Any]]:
    """Each iteration's stored plan (root cause, hypothesis, steps), by iteration number;
    empty where none is stored or it is unreadable."""
    rows = session.execute(
        select(EvolutionIteration.number, EvolutionIteration.plan_json).where(
            EvolutionIteration.run_id == run_id
        )
    ).all()
    plans: dict[int, dict[str, Any]] = {}
    for number, text in rows:
        try:
            plans[number] = json.loads(text) if text else {}
        except ValueError:
            plans[number] = {}
    return plans


def latest_finished_iterations(
    session: Session, limit: int
) -> tuple[int | None, list[EvolutionIteration]]:
    """The newest evolve run with finished iterations and its last ``limit`` of them, newest
    first."""
    run_id = session.scalar(
        select(EvolutionIteration.run_id)
        .where(EvolutionIteration.status.in_(FINISHED))
        .order_by(EvolutionIteration.id.desc())
    )
    if run_id is None:
        return None, []
    rows = session.scalars(
        select(EvolutionIteration)
        .where(EvolutionIteration.run_id == run_id, EvolutionIteration.status.in_(FINISHED))
        .order_by(EvolutionIteration.number.desc())
        .limit(limit)
    )
    return run_id, list(rows)


def run_predictions(
    store: Store, run_id: int | None = None, *, all_runs: bool = False
) -> list[RunPredictions]:
    """The last run, run ``run_id`` or every run (in id order), each with its iterations that
    store both a prediction and a measurement; EvolutionError when there is no such run."""
    with store.session() as session:
        query = select(EvolutionRun).order_by(EvolutionRun.id)
        if run_id is not None:
            query = query.where(EvolutionRun.id == run_id)
        runs = list(session.scalars(query).all())
        if not runs:
            if run_id is not None:
                raise EvolutionError(f"no evolve run {run_id} in the store")
            raise EvolutionError("the store holds no evolve run yet; start one with evolve")
        if run_id is None and not all_runs:
            runs = runs[-1:]
        found = []
        for run in runs:
            rows = session.scalars(
                select(EvolutionIteration)
                .where(
                    EvolutionIteration.run_id == run.id,
                    EvolutionIteration.predicted_bd_rate.is_not(None),
                    EvolutionIteration.bd_rate_vs_parent.is_not(None),
                )
                .order_by(EvolutionIteration.number)
            ).all()
            pairs = [
                (row.number, row.planner, row.predicted_bd_rate, row.bd_rate_vs_parent)
                for row in rows
                if row.predicted_bd_rate is not None and row.bd_rate_vs_parent is not None
            ]
            found.append(RunPredictions(run.id, run.config_json, pairs))
    return found


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
                    # a tuning iteration's parent is the idea (a new structure) it tunes
                    "idea": row.parent_id if row.origin == "tuned" else None,
                    "cost_usd": row.cost_usd,
                    "stage_seconds": json.loads(row.stage_seconds_json),
                    "stage": row.stage,
                }
            )
    return entries


def may_be_best(entry: dict[str, Any]) -> bool:
    """Whether a history entry's codec may be the run's best: scored, and no worse than its
    parent on PSNR-YUV (``points.keeps_chroma``)."""
    return entry["status"] == "scored" and keeps_chroma(entry["bd_rate_yuv_vs_parent"])


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
