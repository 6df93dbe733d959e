"""What an evolve run tells its caller: progress events, and how it stopped when it did not
finish (interrupted by Ctrl-C, or crashed on an unexpected error)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aicodec.generation.generate import scrub


@dataclass(frozen=True)
class EvolveEvent:
    """Progress of a run, for the CLI's display."""

    iteration: int
    total: int
    stage: str
    message: str
    best_bd_rate: float | None
    adoptions: int
    cost_usd: float
    row: dict[str, Any] | None = None  # a finished iteration's history entry


class EvolveInterrupted(Exception):
    """Raised (after the store is updated) when Ctrl-C stopped a run; says how to resume."""

    def __init__(self, run_id: int, number: int, stage: str) -> None:
        super().__init__(f"evolve run {run_id} interrupted in iteration {number} ({stage})")
        self.run_id, self.number, self.stage = run_id, number, stage


class EvolveCrashed(Exception):
    """Raised when an unexpected error (a bug, an environment failure the lab does not know)
    stopped a run: ``error`` is that error; the run was marked ``interrupted`` (where the
    store still answered) and ``--resume`` goes on from it."""

    def __init__(self, run_id: int, number: int, stage: str, error: BaseException) -> None:
        where = f"in iteration {number} ({stage})" if number else f"before its iterations ({stage})"
        super().__init__(f"evolve run {run_id} stopped {where} by {type(error).__name__}: {error}")
        self.run_id, self.number, self.stage, self.error = run_id, number, stage, error


def internal_reason(error: BaseException) -> str:
    """The stop reason stored with a run that an unexpected error stopped."""
    return scrub(f"internal error: {type(error).__name__}: {error}")[:500]
