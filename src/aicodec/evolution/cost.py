"""What each adopted gain of an evolve run cost: the iterations, sandbox minutes, model
tokens and dollars spent since the previous adoption (or the run's start), the gain (BD-rate
of the adopted codec against the codec it replaced, on the run's training clips) and the
cost per percent of that gain; and the same for the whole run against its start."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aicodec.adoption import bd_rate_between
from aicodec.settings import Settings
from aicodec.store import Store
from aicodec.store.queries.costs import RunSpend, run_spend


@dataclass(frozen=True)
class Spent:
    """What a span of iterations cost: how many, their sandbox minutes (wall clock in the
    stages that run codecs), model tokens and US dollars (None when some of the run's model
    calls name no iteration: logged before the store kept it)."""

    iterations: int
    sandbox_minutes: float
    tokens: int | None
    cost_usd: float | None


@dataclass(frozen=True)
class PerPercent:
    """A ``Spent`` divided by the percent of BD-rate gained: iterations, sandbox minutes,
    tokens and US dollars per percent (None where the spend is unknown)."""

    iterations: float
    sandbox_minutes: float
    tokens: float | None
    cost_usd: float | None


@dataclass(frozen=True)
class GainCost:
    """One adopted gain and what it cost. ``iteration`` adopted ``candidate``; the gain is its
    mean BD-rate (PSNR-Y, percent, negative = fewer bits) against ``versus`` on the training
    clips; ``spent`` covers iterations ``first_iteration``..``last_iteration``. For the whole
    run, ``iteration`` is None, ``candidate`` the last adopted codec (None: none), ``versus``
    the start and ``spent`` every iteration and model call."""

    iteration: int | None
    candidate: int | None
    versus: int
    first_iteration: int | None
    last_iteration: int | None
    gain_percent: float | None
    spent: Spent
    per_percent: PerPercent | None  # None unless the gain is below 0


@dataclass(frozen=True)
class CostPerGain:
    """Each adoption's cost per gain, in order, and the whole run's."""

    adoptions: list[GainCost]
    run: GainCost


def per_percent(amount: float | None, gain_percent: float | None) -> float | None:
    """``amount`` (any unit) per percent of BD-rate gained: amount / -gain for a gain below 0
    (percent, negative = fewer bits); None for no gain, an unknown gain or amount."""
    if amount is None or gain_percent is None or gain_percent >= 0:
        return None
    return amount / -gain_percent


def cost_of_gain(spent: Spent, gain_percent: float | None) -> PerPercent | None:
    """Each figure of ``spent`` per percent of ``gain_percent`` (BD-rate, percent); None when
    the gain is not below 0."""
    iterations = per_percent(spent.iterations, gain_percent)
    minutes = per_percent(spent.sandbox_minutes, gain_percent)
    if iterations is None or minutes is None:
        return None
    return PerPercent(
        iterations,
        minutes,
        per_percent(spent.tokens, gain_percent),
        per_percent(spent.cost_usd, gain_percent),
    )


def spent_between(spend: RunSpend, first: int, last: int) -> Spent:
    """What iterations ``first``..``last`` (numbers, inclusive) of a run spent; sandbox
    minutes from seconds; tokens and dollars None when some call names no iteration."""
    inside = [item for item in spend.iterations if first <= item.number <= last]
    known = spend.unattributed_calls == 0
    return Spent(
        len(inside),
        sum(item.sandbox_seconds for item in inside) / 60,
        sum(item.tokens for item in inside) if known else None,
        sum(item.cost_usd for item in inside) if known else None,
    )


def spent_in_all(spend: RunSpend) -> Spent:
    """What a run spent in all: every iteration, and every model call of its batch."""
    return Spent(
        len(spend.iterations),
        sum(item.sandbox_seconds for item in spend.iterations) / 60,
        spend.tokens,
        spend.cost_usd,
    )


def cost_per_gain(
    store: Store,
    settings: Settings,
    run_id: int,
    start_id: int,
    adoptions: Sequence[dict[str, Any]],
    training_ids: Sequence[int],
    qualities: Sequence[int],
    run_gain: float | None,
) -> CostPerGain:
    """Run ``run_id``'s cost per gain: each adoption (``iteration``, ``candidate``, in order)
    against the codec adopted before it (the first: ``start_id``), and the run, whose gain
    ``run_gain`` is its last adopted codec's BD-rate against the start (percent)."""
    spend = run_spend(store, run_id)
    gains = []
    versus, after = start_id, 0
    for adoption in adoptions:
        number, candidate = adoption["iteration"], adoption["candidate"]
        gain, _ = bd_rate_between(store, settings, candidate, versus, training_ids, qualities)
        spent = spent_between(spend, after + 1, number)
        gains.append(
            GainCost(
                number, candidate, versus, after + 1, number, gain, spent, cost_of_gain(spent, gain)
            )
        )
        versus, after = candidate, number
    total = spent_in_all(spend)
    numbers = [item.number for item in spend.iterations]
    adopted = adoptions[-1]["candidate"] if adoptions else None
    gain = run_gain if adoptions else None
    run = GainCost(
        None,
        adopted,
        start_id,
        min(numbers, default=None),
        max(numbers, default=None),
        gain,
        total,
        cost_of_gain(total, gain),
    )
    return CostPerGain(gains, run)
