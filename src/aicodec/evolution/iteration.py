"""One evolve iteration as a value passed through the stages, and the one writer of its row.

A stage takes an ``Iteration`` and returns it with more known (its parent, plan, candidate,
scores, adoption) and with the row values it set; ``IterationLog`` is the only code that
writes ``evolution_iterations`` rows: it opens a row, marks the stage, stores what the
stages set, adds the time spent per stage, and finishes or interrupts it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from aicodec.evolution.planner import PastIteration, Plan
from aicodec.evolution.tuning import Tuning
from aicodec.generation.generate import scrub
from aicodec.scoring.candidate import ScoreOutcome
from aicodec.store import EvolutionIteration, EvolutionRun, Store

REASON_LIMIT = 4000  # characters of a failure's reason kept in the row


@dataclass(frozen=True)
class Failure:
    """Why an iteration ended without a scored codec: its kind (generation, invalid,
    sandbox-encode, bd-undefined, ...) and the reason in words."""

    kind: str
    reason: str


@dataclass(frozen=True)
class Iteration:
    """An iteration as far as its stages have taken it."""

    number: int
    row_id: int
    parent_id: int | None = None
    candidate_id: int | None = None
    recent: tuple[PastIteration, ...] = ()  # the finished iterations it may learn from
    plan: Plan | None = None
    tuning: Tuning | None = None  # set when it tunes an idea's PARAMS (evolution.tuning)
    cost_usd: float = 0.0  # spent on model calls so far (USD)
    outcomes: tuple[ScoreOutcome, ...] = ()  # its scores on the training clips
    values: Mapping[str, Any] = field(default_factory=dict)  # row columns the stages set
    failure: Failure | None = None

    @property
    def prepared(self) -> bool:
        """Whether it has a parent and a candidate: what is left is to score and decide."""
        return self.parent_id is not None and self.candidate_id is not None

    def storing(self, **values: Any) -> Iteration:
        """This iteration with row values to store added."""
        return replace(self, values={**self.values, **values})

    def failing(self, kind: str, reason: str, **values: Any) -> Iteration:
        """This iteration, failed for ``reason`` (with row values to store)."""
        return replace(self.storing(**values), failure=Failure(kind, reason))


def now() -> datetime:
    """The current time in UTC, as rows store it."""
    return datetime.now(UTC)


class IterationLog:
    """The one writer of a run's iteration rows."""

    def __init__(self, store: Store, run_id: int) -> None:
        self.store, self.run_id = store, run_id

    def _write(self, row_id: int, values: Mapping[str, Any]) -> None:
        with self.store.session() as session:
            row = session.get(EvolutionIteration, row_id)
            assert row is not None
            for key, value in values.items():
                setattr(row, key, value)

    def open(self, number: int, row: EvolutionIteration | None) -> Iteration:
        """Iteration ``number`` running: a new row, or its stored one (``row``) resumed
        with the parent and candidate it already has."""
        if row is not None:
            self._write(row.id, {"status": "running"})
            return Iteration(number, row.id, row.parent_id, row.candidate_id)
        with self.store.session() as session:
            created = EvolutionIteration(
                run_id=self.run_id,
                number=number,
                status="running",
                stage="parent",
                adopted=False,
                cost_usd=0.0,
                stage_seconds_json="{}",
            )
            session.add(created)
            session.flush()
            return Iteration(number, created.id)

    def save(self, iteration: Iteration) -> None:
        """Store the row values the stages set so far."""
        if iteration.values:
            self._write(iteration.row_id, iteration.values)

    @contextmanager
    def stage(self, row_id: int, stage: str) -> Iterator[None]:
        """Mark the row's stage, and add the time spent in it to its stage seconds."""
        self._write(row_id, {"stage": stage})
        started = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - started
            with self.store.session() as session:
                row = session.get(EvolutionIteration, row_id)
                assert row is not None
                seconds = json.loads(row.stage_seconds_json or "{}")
                seconds[stage] = round(seconds.get(stage, 0.0) + spent, 3)
                row.stage_seconds_json = json.dumps(seconds)

    def finish(self, iteration: Iteration, status: str) -> None:
        """End the row: ``scored``, or ``failed`` with the iteration's failure."""
        values: dict[str, Any] = {"status": status, "stage": "end", "finished_at": now()}
        if iteration.failure is not None:
            values["failure_kind"] = iteration.failure.kind
            values["reason"] = scrub(iteration.failure.reason)[:REASON_LIMIT]
        self._write(iteration.row_id, {**iteration.values, **values})

    def interrupt(self, reason: str | None) -> None:
        """Mark every running iteration and the run ``interrupted`` (with ``reason`` as the
        run's stop reason when given)."""
        with self.store.session() as session:
            for row in session.scalars(
                select(EvolutionIteration).where(
                    EvolutionIteration.run_id == self.run_id,
                    EvolutionIteration.status == "running",
                )
            ):
                row.status = "interrupted"
            run = session.get(EvolutionRun, self.run_id)
            assert run is not None
            run.status = "interrupted"
            if reason is not None:
                run.stop_reason = reason


# Failure kinds of an iteration whose codec ran and was measured (only judged worse): the lab
# works, so such an iteration ends a streak of failures rather than lengthening it.
MEASURED_FAILURES = frozenset({"screen"})


def failure_streak(rows: Sequence[EvolutionIteration]) -> list[EvolutionIteration]:
    """The iterations (newest first) that end ``rows`` (oldest first) with failures whose codec
    was never measured: a crash, an invalid or duplicate codec, a provider's or generation's
    failure; a scored iteration, or one stopped at the first stage, ends the streak."""
    streak: list[EvolutionIteration] = []
    for row in reversed(rows):
        if row.status != "failed" or row.failure_kind in MEASURED_FAILURES:
            break
        streak.append(row)
    return streak
