"""The evolve loop: plan, choose a parent, generate, score, adopt; resumable after a crash."""

from aicodec.evolution.loop import (
    ClipSpec,
    EvolveConfig,
    EvolveEvent,
    EvolveInterrupted,
    EvolveSummary,
    history,
    holdout_sources,
    resume_evolution,
    run_clips,
    start_evolution,
    summarise,
    unfinished_run,
)

__all__ = [
    "ClipSpec",
    "EvolveConfig",
    "EvolveEvent",
    "EvolveInterrupted",
    "EvolveSummary",
    "history",
    "holdout_sources",
    "resume_evolution",
    "run_clips",
    "start_evolution",
    "summarise",
    "unfinished_run",
]
