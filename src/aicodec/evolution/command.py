"""What ``aicodec evolve`` and ``aicodec history`` ask of the loop and the store, each in one
call: resume the last unfinished run or start a new one from the options given; a run's
iterations with its clips."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aicodec.clips import BUILTIN_NAME, ClipSpec, held_out_window
from aicodec.errors import ConfigError
from aicodec.evolution.config import EvolveConfig, holdout_sources
from aicodec.evolution.cost import CostPerGain
from aicodec.evolution.events import EvolveEvent
from aicodec.evolution.loop import resume_evolution, start_evolution
from aicodec.evolution.summary import EvolveSummary, run_clips, summarise
from aicodec.scoring.candidate import parse_qualities
from aicodec.settings import Settings
from aicodec.store import Store
from aicodec.store.queries.runs import history, run_ids


@dataclass(frozen=True)
class EvolveOptions:
    """The options of ``aicodec evolve`` as given (None or empty: not given; for ``start``,
    0); the settings hold every other value."""

    iterations: int
    videos: Sequence[str] = ()
    holdout: Sequence[str] = ()
    video_set: str | None = None
    holdout_set: str | None = None
    parent: str | None = None
    qualities: str | None = None
    encoders: str | None = None
    provider: str | None = None
    git_repo: str | None = None
    threshold: float | None = None
    fps: str | None = None
    frames: int | None = None
    start: int = 0
    parallel: int | None = None
    tune_trials: int | None = None
    seed: int = 0
    max_cost: float | None = None
    max_minutes: float | None = None


# The options a run keeps in its stored config, so --resume refuses them: the run goes on
# with its own. --resume may change the budget (--max-cost, --max-minutes) and, outside
# these options, the model's address and prices (--model, --base-url, --prices).
STORED_OPTIONS = {
    "videos": "--video",
    "holdout": "--holdout",
    "video_set": "--video-set",
    "holdout_set": "--holdout-set",
    "parent": "--parent",
    "qualities": "--qualities",
    "encoders": "--encoders",
    "provider": "--provider",
    "git_repo": "--git-repo",
    "threshold": "--threshold",
    "fps": "--fps",
    "frames": "--frames",
    "start": "--start",
    "parallel": "--parallel",
    "tune_trials": "--tune-trials",
}


def _given(value: object) -> bool:
    """Whether an option was given: not None and, for a list, not empty."""
    if isinstance(value, (list, tuple)):
        return bool(value)
    return value is not None


def refuse_stored_options(options: EvolveOptions) -> None:
    """ConfigError naming the first option given that a resumed run takes from its config."""
    for name, option in STORED_OPTIONS.items():
        value = getattr(options, name)  # a window from frame 0 is the default: not given
        if value != 0 if name == "start" else _given(value):
            raise ConfigError(f"--resume continues a run with its own settings; drop {option}")


def _clip_spec(source: str, options: EvolveOptions, *, default_holdout: bool = False) -> ClipSpec:
    """A clip of the run: ``source`` cut to the window the options give (a clip of the
    default holdout, when they give none: its own window, as ``held_out_window`` says)."""
    start, frames = options.start, options.frames
    if default_holdout:
        start, frames = held_out_window(source, start, frames)
    return ClipSpec(source, start, frames, None, options.fps)


def set_clip_specs(name_or_file: str) -> list[ClipSpec]:
    """The clips of a test set (a shipped name or a TOML file), each with its own window."""
    from aicodec.suites import load_set

    return [clip.spec for clip in load_set(name_or_file).clips]


def _run_clips(options: EvolveOptions) -> tuple[list[ClipSpec], list[ClipSpec]]:
    """A new run's training and holdout clips: the files or built-in clips given, or a test
    set's (--video-set, --holdout-set), else the defaults."""
    if options.video_set and options.videos:
        raise ConfigError("give --video or --video-set, not both")
    if options.holdout_set and options.holdout:
        raise ConfigError("give --holdout or --holdout-set, not both")
    if options.video_set:
        training = set_clip_specs(options.video_set)
    else:
        training = [_clip_spec(source, options) for source in options.videos or [BUILTIN_NAME]]
    if options.holdout_set:
        return training, set_clip_specs(options.holdout_set)
    names = [spec.name for spec in training]
    held = holdout_sources(names, list(options.holdout))
    default = not options.holdout
    return training, [_clip_spec(source, options, default_holdout=default) for source in held]


def new_config(settings: Settings, options: EvolveOptions) -> EvolveConfig:
    """A new run's config: the options given, every other value from the settings."""
    training, holdout = _run_clips(options)
    return EvolveConfig.from_settings(
        settings,
        iterations=options.iterations,
        videos=training,
        holdout=holdout,
        qualities=parse_qualities(options.qualities),
        encoders=[name.strip() for name in (options.encoders or "").split(",") if name.strip()]
        or None,
        seed=options.seed,
        provider=options.provider,
        parent=options.parent,
        max_cost=options.max_cost,
        max_minutes=options.max_minutes,
        git_repo=None if options.git_repo is None else str(Path(options.git_repo).resolve()),
        threshold=options.threshold,
        parallel=options.parallel,
        tune_trials=options.tune_trials,
    )


def evolve(
    store: Store,
    settings: Settings,
    options: EvolveOptions,
    on_event: Callable[[EvolveEvent], None] | None = None,
    *,
    resume: bool = False,
) -> EvolveSummary:
    """Carry the last unfinished run on (``resume``: refused with an option its stored config
    decides; the budget may change), or start a new run from ``options``."""
    if resume:
        refuse_stored_options(options)
        return resume_evolution(
            store,
            settings,
            on_event,
            max_cost=options.max_cost,
            max_minutes=options.max_minutes,
        )
    return start_evolution(store, settings, new_config(settings, options), on_event)


@dataclass(frozen=True)
class RunHistory:
    """An evolve run's iterations, oldest first, and its training and holdout clips; with
    settings given, what each of its adopted gains cost."""

    entries: list[dict[str, Any]]
    clips: dict[str, list[dict[str, Any]]]
    cost_per_gain: CostPerGain | None = None


def run_history(
    store: Store, run_id: int | None = None, settings: Settings | None = None
) -> RunHistory:
    """A run's (default: the last run's) iterations and clips; with ``settings``, its cost
    per gain too (as its summary gives it)."""
    if run_id is None:
        with store.session() as session:
            known = run_ids(session)
        run_id = known[-1] if known else None  # none: history says the store has no run
    entries, clips = history(store, run_id), run_clips(store, run_id)
    if settings is None or run_id is None:
        return RunHistory(entries, clips)
    return RunHistory(entries, clips, summarise(store, settings, run_id).cost_per_gain)
