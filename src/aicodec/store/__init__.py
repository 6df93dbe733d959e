"""The experiment store: SQLAlchemy over SQLite by default, migrated with Alembic."""

from aicodec.store.db import Store, head_revision, normalise_url
from aicodec.store.models import (
    AdoptionRecord,
    BaselineEncode,
    CandidateRecord,
    ClipRecord,
    EvolutionIteration,
    EvolutionRun,
    GenerationRecord,
    ModelCall,
    RatePointChoice,
    RunRecord,
    ScoreRecord,
)

__all__ = [
    "AdoptionRecord",
    "BaselineEncode",
    "CandidateRecord",
    "ClipRecord",
    "EvolutionIteration",
    "EvolutionRun",
    "GenerationRecord",
    "ModelCall",
    "RatePointChoice",
    "RunRecord",
    "ScoreRecord",
    "Store",
    "head_revision",
    "normalise_url",
]
