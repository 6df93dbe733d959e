"""An evolve run's configuration: its clips, its qualities and encoders, its search rule.

Every default comes from the settings (``EvolveConfig.from_settings``); the config is stored
as JSON with the run, so ``--resume`` repeats it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from aicodec.candidates.contract import DEFAULT_QUALITIES
from aicodec.clips import BUILTIN_NAME, HELD_OUT_BUILTINS, ClipSpec
from aicodec.errors import EvolutionError
from aicodec.evolution.parents import IslandRule
from aicodec.ladder import load_ladder
from aicodec.settings import Settings
from aicodec.store.queries.points import normal_qualities

NO_HOLDOUT = "none"  # --holdout none: adoption is decided on the training clips


def settings_values(settings: Settings) -> dict[str, Any]:
    """The config's defaults, every one from the settings (the encoders: the ladder's)."""
    encoders = settings.evolve_encoders or ",".join(load_ladder(settings.ladder_file).compared)
    return {
        "holdout": [],
        "qualities": list(DEFAULT_QUALITIES),
        "encoders": [name.strip() for name in encoders.split(",") if name.strip()],
        "seed": 0,
        "provider": settings.provider,
        "parent": None,
        "planner": settings.evolve_planner,
        "repairs": settings.generate_repairs,
        "max_cost": None,
        "max_minutes": None,
        "git_repo": str(settings.codec_repo.resolve()),
        "islands": settings.evolve_islands,
        "explore": settings.evolve_explore,
        "top": settings.evolve_top,
        "migrate_every": settings.evolve_migrate_every,
        "threshold": settings.adopt_threshold_percent,
        "max_failures_in_row": settings.evolve_max_failures_in_row,
        "duplicate_tries": settings.evolve_duplicate_tries,
        "parallel": settings.evolve_parallel,
        "screen_frames": settings.evolve_screen_frames,
        "screen_stop_percent": settings.evolve_screen_stop_percent,
        "tune_trials": settings.evolve_tune_trials,
    }


@dataclass
class EvolveConfig:
    """An evolve run's settings; stored as JSON with the run so --resume repeats them."""

    iterations: int
    videos: list[ClipSpec]
    holdout: list[ClipSpec]
    qualities: list[int]
    encoders: list[str]
    seed: int
    provider: str | None
    parent: str | None
    planner: str
    repairs: int
    max_cost: float | None
    max_minutes: float | None
    git_repo: str
    islands: int
    explore: float
    top: int
    migrate_every: int
    threshold: float
    max_failures_in_row: int
    duplicate_tries: int
    parallel: int
    screen_frames: int  # the cheap first stage's window per training clip (0: none)
    screen_stop_percent: float  # it stops a candidate needing more bits than this (%)
    tune_trials: int  # tuning iterations per new structure a model writes (0: none)

    def __post_init__(self) -> None:
        self.qualities = normal_qualities(self.qualities)  # runs stored before kept any order

    def to_json(self) -> str:
        """The config as stored in the run row."""
        return json.dumps(asdict(self))

    @classmethod
    def from_settings(cls, settings: Settings, **given: Any) -> EvolveConfig:
        """A run's config: the values ``given`` (None or absent: the settings' own)."""
        values = {**settings_values(settings), **{k: v for k, v in given.items() if v is not None}}
        return cls(**values)

    @classmethod
    def from_json(cls, text: str, settings: Settings | None = None) -> EvolveConfig:
        """The config of a stored run (a field it predates: the settings' value; no tuning
        iterations for a run from before them)."""
        data = json.loads(text)
        data["videos"] = [ClipSpec(**spec) for spec in data["videos"]]
        data["holdout"] = [ClipSpec(**spec) for spec in data.get("holdout", [])]
        data.setdefault("tune_trials", 0)  # a run from before tuning iterations goes on without
        return cls(**{**settings_values(settings or Settings()), **data})

    @property
    def rule(self) -> IslandRule:
        """The parent-selection rule."""
        return IslandRule(self.islands, self.explore, self.top, self.migrate_every)


def holdout_sources(training: Sequence[str | None], holdout: Sequence[str] | None) -> list[str]:
    """A run's holdout clips: those given; none for ``["none"]``; by default (None or empty)
    the held-out built-in clips (builtin:still, builtin:shake, builtin:bikes) that are not
    training clips."""
    if not holdout:
        names = {source or BUILTIN_NAME for source in training}
        return [name for name in HELD_OUT_BUILTINS if name not in names]
    if NO_HOLDOUT in holdout:
        if len(holdout) > 1:
            raise EvolutionError("--holdout none means no holdout clip; give it alone")
        return []
    return list(holdout)
