"""An evolve run's cost per gain as a table, as the summary and ``history`` show it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from aicodec.cli.common import fmt, out

if TYPE_CHECKING:
    from aicodec.evolution.cost import CostPerGain, GainCost, PerPercent, Spent

COST_COLUMNS = ("adopted", "gain %", "iterations", "sandbox min", "tokens", "USD")


def _count(value: float | None) -> str:
    """Tokens (or tokens per percent) with thousands separators; '-' when unknown."""
    return "-" if value is None else f"{value:,.0f}"


def _usd(value: float | None) -> str:
    """US dollars to four places; '-' when unknown."""
    return "-" if value is None else f"{value:.4f}"


def _spent_cells(spent: Spent | PerPercent) -> list[str]:
    """The four cost cells: iterations, sandbox minutes, tokens, dollars."""
    iterations = spent.iterations
    shown = str(iterations) if isinstance(iterations, int) else fmt(iterations)
    return [shown, fmt(spent.sandbox_minutes), _count(spent.tokens), _usd(spent.cost_usd)]


def _gain_rows(label: str, gain: GainCost) -> list[list[str]]:
    """A gain's row (what it cost) and, where the gain is below 0, its row per percent."""
    rows = [[label, fmt(gain.gain_percent), *_spent_cells(gain.spent)]]
    if gain.per_percent is not None:
        rows.append(["  per 1 %", "", *_spent_cells(gain.per_percent)])
    return rows


def render_cost_per_gain(cost: CostPerGain) -> None:
    """The cost per gain: a table with a row per adoption and one for the run (a row per
    percent of gain under each); two lines with the run's cost when it adopted nothing."""
    run = cost.run
    if not cost.adoptions:
        spent = run.spent
        out.print("cost per gain: none, the run adopted nothing; in all it cost")
        out.print(
            f"  {spent.iterations} iterations, {fmt(spent.sandbox_minutes)} sandbox min, "
            f"{_count(spent.tokens)} tokens, {_usd(spent.cost_usd)} USD"
        )
        return
    table = Table(title="cost per gain (gain: BD-rate vs the codec before, training clips)")
    for index, column in enumerate(COST_COLUMNS):
        table.add_column(column, justify="left" if index == 0 else "right")
    for gain in cost.adoptions:
        for row in _gain_rows(f"#{gain.iteration}: {gain.candidate} vs {gain.versus}", gain):
            table.add_row(*row)
    for row in _gain_rows(f"run: {run.candidate} vs {run.versus}", run):
        table.add_row(*row)
    out.print(table)
    out.print(
        "#N: C vs P: iteration N adopted codec C, its gain measured against P (run: the last "
        "adopted against the start); costs since the adoption before; per 1 %: each cost "
        "divided by the gain; sandbox min: wall clock in the first stage, score and adopt."
    )
