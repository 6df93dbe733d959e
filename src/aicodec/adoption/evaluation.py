"""Evaluating a candidate for adoption: score it, and the current best as its rival, on the
evaluation clips, then let the policy decide (``adopt``). The library never prints: the
runs that failed come back as warnings, and ``progress`` hears what is being run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aicodec.adoption import Decision, adopt, adopted_decision, candidate_source, check_codec_repo
from aicodec.clips import HELD_OUT_BUILTINS, Clip, held_out_window, load_clip
from aicodec.clips.records import record_clip
from aicodec.errors import SandboxError, ValidationError
from aicodec.ladder import Ladder, load_ladder
from aicodec.scoring.candidate import run_and_measure, score_candidate
from aicodec.settings import Settings
from aicodec.store import Store
from aicodec.store.queries.points import current_best

Progress = Callable[[str], None]


@dataclass
class Evaluation:
    """An adoption decision and the warnings met on the way (a run that failed on a clip)."""

    decision: Decision
    warnings: list[str] = field(default_factory=list)


def _silent(text: str) -> None:
    """A progress callback that shows nothing."""


def evaluate_and_adopt(
    store: Store,
    settings: Settings,
    candidate_id: int,
    qualities: Sequence[int],
    videos: Sequence[Path | str] = (),
    *,
    start: int = 0,
    frames: int | None = None,
    test_set: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> Evaluation:
    """Score candidate ``candidate_id`` against the ladder's compared encoders, and run the
    current best (its rival), on the evaluation clips ``videos`` (default: the held-out
    built-in clips, each at its own window when none is given; or the clips of
    ``test_set``, a shipped set's name or a set file) at ``qualities``; then
    ``adopt`` it (``force``: past the policy) into the settings' codec repository. A
    candidate adopted before is not scored again: its earlier decision comes back."""
    repo = settings.codec_repo
    source, name = candidate_source(store, candidate_id)
    clips = evaluation_clips(settings, videos, start, frames, test_set)
    clip_ids = [record_clip(store, clip) for clip in clips]
    if adopted_decision(store, candidate_id) is not None:
        return Evaluation(adopt(store, settings, candidate_id, clip_ids, qualities, repo_path=repo))
    check_codec_repo(repo)
    ladder = load_ladder(settings.ladder_file)
    ladder.select(list(ladder.compared))
    best = current_best(store)
    rival = candidate_source(store, best) if best not in (None, candidate_id) else None
    show = progress or _silent
    warnings: list[str] = []
    for clip in clips:
        show(f"scoring candidate {candidate_id} on {clip.name}")
        warnings += _score_candidate(store, settings, ladder, clip, (source, name), qualities, show)
        if rival is not None:
            warnings += _run_rival(store, settings, clip, rival, qualities, show)
    decision = adopt(
        store, settings, candidate_id, clip_ids, qualities, force=force, repo_path=repo
    )
    return Evaluation(decision, warnings)


def evaluation_clips(
    settings: Settings,
    videos: Sequence[Path | str],
    start: int,
    frames: int | None,
    test_set: str | None = None,
) -> list[Clip]:
    """The clips ``videos`` cut to the window given, or a test set's clips; by default the
    held-out built-in clips, each at its own window when none is given
    (``held_out_window``)."""
    if test_set is not None:
        from aicodec.suites import load_set

        return [clip.load(settings) for clip in load_set(test_set).clips]
    if videos:
        return [load_clip(path, settings, start=start, count=frames) for path in videos]
    clips = []
    for name in HELD_OUT_BUILTINS:
        first, count = held_out_window(name, start, frames)
        clips.append(load_clip(name, settings, start=first, count=count))
    return clips


def _score_candidate(
    store: Store,
    settings: Settings,
    ladder: Ladder,
    clip: Clip,
    candidate: tuple[str, str],
    qualities: Sequence[int],
    show: Progress,
) -> list[str]:
    """Score the candidate against the ladder's compared encoders on one clip; the message
    of a run that failed."""
    source, name = candidate
    try:
        score_candidate(
            source,
            name,
            clip,
            store,
            settings,
            ladder,
            qualities,
            encoders=list(ladder.compared),
            progress=lambda text: show(f"{name}: {text}"),
        )
    except (SandboxError, ValidationError) as exc:
        return [str(exc)]
    return []


def _run_rival(
    store: Store,
    settings: Settings,
    clip: Clip,
    rival: tuple[str, str],
    qualities: Sequence[int],
    show: Progress,
) -> list[str]:
    """Run the current best on one clip (its stored runs are reused); the message of a run
    that failed."""
    source, name = rival
    try:
        run_and_measure(
            source,
            name,
            clip,
            store,
            settings,
            qualities,
            progress=lambda text: show(f"best {name}: {text}"),
        )
    except (SandboxError, ValidationError) as exc:
        return [str(exc)]
    return []
