"""What an evolve run spent, iteration by iteration: the time its iterations spent in the
stages that run codecs in the sandbox (from their stage seconds), and the tokens and dollars
of its model calls (from the call log, where each call of an evolve run names its
iteration)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import func, select

from aicodec.errors import EvolutionError
from aicodec.store import EvolutionIteration, EvolutionRun, ModelCall, Store

# the stages in which an iteration's codecs (and its parent's, on the first frames) run in
# the sandbox: the first stage, the score on the training clips, the holdout clips' score
SANDBOX_STAGES = ("screen", "score", "adopt")


@dataclass(frozen=True)
class IterationSpend:
    """One iteration's spend: seconds in its sandbox stages (wall clock), model tokens (input,
    cached or not, and output) and model dollars (US) of the calls logged under it."""

    number: int
    sandbox_seconds: float
    tokens: int
    cost_usd: float


@dataclass(frozen=True)
class RunSpend:
    """A run's spend per iteration (by number), and the totals of every model call of its
    batch; ``unattributed_calls`` of them name no iteration (logged before migration 0008)."""

    iterations: list[IterationSpend]
    tokens: int
    cost_usd: float
    unattributed_calls: int


def sandbox_seconds(stage_seconds: dict[str, float]) -> float:
    """Seconds (wall clock) an iteration spent in its sandbox stages, from its stage seconds."""
    return sum(float(stage_seconds.get(stage, 0.0)) for stage in SANDBOX_STAGES)


def run_spend(store: Store, run_id: int) -> RunSpend:
    """What run ``run_id`` spent per iteration and in all; EvolutionError for an unknown run."""
    tokens = (
        ModelCall.input_tokens
        + ModelCall.cache_read_tokens
        + ModelCall.cache_write_tokens
        + ModelCall.output_tokens
    )
    with store.session() as session:
        run = session.get(EvolutionRun, run_id)
        if run is None:
            raise EvolutionError(f"no evolve run {run_id} in the store")
        rows = session.execute(
            select(EvolutionIteration.number, EvolutionIteration.stage_seconds_json)
            .where(EvolutionIteration.run_id == run_id)
            .order_by(EvolutionIteration.number)
        ).all()
        calls = session.execute(
            select(
                ModelCall.iteration,
                func.count(ModelCall.id),
                func.coalesce(func.sum(tokens), 0),
                func.coalesce(func.sum(ModelCall.cost_usd), 0.0),
            )
            .where(ModelCall.batch == run.batch)
            .group_by(ModelCall.iteration)
        ).all()
    per_call = {number: (int(total), float(cost)) for number, _, total, cost in calls}
    unattributed = sum(int(count) for number, count, _, _ in calls if number is None)
    spends = [
        IterationSpend(
            number,
            sandbox_seconds(json.loads(text or "{}")),
            *per_call.get(number, (0, 0.0)),
        )
        for number, text in rows
    ]
    return RunSpend(
        spends,
        sum(int(total) for _, _, total, _ in calls),
        sum(float(cost) for _, _, _, cost in calls),
        unattributed,
    )
