"""The evolve loop: plan, choose a parent, generate, score, adopt; resumable after a crash."""

from aicodec.evolution.config import EvolveConfig, holdout_sources
from aicodec.evolution.events import EvolveCrashed, EvolveEvent, EvolveInterrupted
from aicodec.evolution.loop import resume_evolution, start_evolution
from aicodec.evolution.summary import EvolveSummary, run_clips, summarise
from aicodec.store.queries.runs import history, unfinished_run

__all__ = [
    "EvolveConfig",
    "EvolveCrashed",
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
