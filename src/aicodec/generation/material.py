"""What the prompts show of the store (read through ``aicodec.store.queries``), gathered in
one place.

For the parent on each training clip: its BD-rates, its points (kbit/s, PSNR-Y/U/V, SSIM-Y)
with the encode and decode seconds against the limits its child would get, its per-frame
PSNR-Y in short, and the ladder's own points on the clip (the targets). Then the recent
iterations (hypothesis, predicted, measured), the recent failures and the best codec.
Holdout clips never appear (only the ``clip_ids`` given), nor the runs of ``hidden``
candidates. Every part is a droppable block (``prompting.Block``) ranked so that the
least needed goes first when a prompt is over its budget.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from aicodec.candidates.contract import DEFAULT_QUALITIES
from aicodec.errors import AicodecError
from aicodec.generation.prompts import Block, PromptMaterial, Section, timing_text
from aicodec.ladder import Ladder, load_ladder
from aicodec.sandbox.runner import wall_limit
from aicodec.settings import Settings
from aicodec.store import EvolutionIteration, Store
from aicodec.store.queries.candidates import (
    failed_generations,
    failed_runs,
    find_candidate,
    generation_note,
)
from aicodec.store.queries.clips import stored_clip
from aicodec.store.queries.points import (
    StoredPoint,
    best_candidate,
    ladder_bd_rates,
    latest_point,
    scored_clips,
    stored_ladder_points,
)
from aicodec.store.queries.runs import latest_finished_iterations

if TYPE_CHECKING:  # the evolution package imports this module
    from aicodec.evolution.planner import PastIteration

CLIPS_SHOWN = 6
ITERATIONS_SHOWN = 8
FAILURES_SHOWN = 12
WORST_FRAMES = 3
NEWEST_KEPT = 3  # iterations and failures dropped only after the per-frame profiles

# Drop order when a prompt is over budget: the highest rank goes first.
RANK_OLDER_FAILURES = 6
RANK_OLDER_ITERATIONS = 5
RANK_PROFILE = 4
RANK_FAILURES = 3
RANK_ITERATIONS = 2
RANK_LADDER = 1
RANK_POINTS = 0


def _db(value: float) -> str:
    """A PSNR for a prompt: two decimals, or ``inf`` for a lossless frame."""
    return f"{value:.2f}" if math.isfinite(value) else "inf"


def frame_profile(values: Sequence[float], worst: int = WORST_FRAMES) -> str:
    """Per-frame PSNR-Y (dB) in short: the first frame, the mean of the others, the worst."""
    text = f"frame 0 {_db(values[0])} dB"
    rest = [value for value in values[1:] if math.isfinite(value)]
    if len(values) > 1:
        mean = _db(sum(rest) / len(rest)) if rest else "inf"
        text += f", frames 1-{len(values) - 1} mean {mean} dB"
    ranked = sorted(range(len(values)), key=lambda index: (values[index], index))[:worst]
    return text + "; worst: " + ", ".join(f"#{index} {_db(values[index])}" for index in ranked)


def _point_line(settings: Settings, quality: int, point: StoredPoint | None) -> str:
    """One stored point of the parent with its times and a child's limits."""
    if point is None or point.kbps is None:
        return f"- q{quality}: no successful stored run"
    times = []
    for role, seconds in (
        ("encode", point.encode_wall_seconds),
        ("decode", point.decode_wall_seconds),
    ):
        if seconds:
            times.append(timing_text(role, seconds, wall_limit(settings, seconds)))
    return (
        f"- q{quality}: {point.kbps:.1f} kbps, PSNR-Y {_db(point.psnr_y or 0.0)} dB, "
        f"U {_db(point.psnr_u or 0.0)}, V {_db(point.psnr_v or 0.0)}, "
        f"SSIM-Y {point.ssim_y or 0.0:.4f}" + (f"; {', '.join(times)}" if times else "")
    )


def _clip_section(
    session: Session,
    settings: Settings,
    ladder: Ladder | None,
    parent_id: int,
    clip_id: int,
    qualities: Sequence[int],
) -> Section:
    """The parent on one clip (scored at ``qualities``): BD-rates, points, per-frame
    profiles, the ladder's points."""
    clip = stored_clip(session, clip_id)
    name = clip.name if clip is not None else f"clip {clip_id}"
    rates = ladder_bd_rates(session, parent_id, clip_id, qualities) or {}
    figures = ", ".join(
        f"vs {encoder} {value:+.1f} %" if value is not None else f"vs {encoder} undefined"
        for encoder, value in rates.items()
    )
    shape = f" ({clip.width}x{clip.height}, {clip.frame_count} frames)" if clip else ""
    points = {quality: latest_point(session, parent_id, clip_id, quality) for quality in qualities}
    blocks = [
        Block(
            tuple(_point_line(settings, q, point) for q, point in points.items()),
            RANK_POINTS,
            "parent points",
            f"parent points on {name}",
        )
    ]
    profiles = []
    for quality, point in points.items():
        values = point.frame_psnr_y if point is not None else ()
        if values:
            profiles.append(f"  q{quality}: {frame_profile(values)}")
    heading = "Per-frame PSNR-Y (dB):"
    if not profiles:
        heading = "Per-frame PSNR-Y: not stored for these runs (scored before the lab kept it)."
    blocks.append(
        Block(
            (heading, *profiles), RANK_PROFILE, "per-frame profiles", f"per-frame profile of {name}"
        )
    )
    if ladder is not None:
        curves = stored_ladder_points(session, ladder, clip_id)
        if curves:
            lines = ["The ladder on this clip (kbps at PSNR-Y dB):"] + [
                f"  {encoder}: " + ", ".join(f"{row.kbps:.1f} at {_db(row.psnr_y)}" for row in rows)
                for encoder, rows in curves.items()
            ]
            blocks.append(
                Block(tuple(lines), RANK_LADDER, "ladder curves", f"ladder points of {name}")
            )
    return Section(f"## {name}: BD-rate {figures or 'not stored'}{shape}", (), tuple(blocks))


def parent_sections(
    session: Session,
    settings: Settings,
    ladder: Ladder | None,
    parent_id: int,
    clip_ids: Collection[int] | None,
    qualities: Sequence[int] | None = None,
) -> list[Section]:
    """The parent's figures on its latest scored clips (only ``clip_ids`` when given; only
    scores at ``qualities`` when given)."""
    latest = scored_clips(session, parent_id, clip_ids, qualities, CLIPS_SHOWN)
    if not latest:
        return []
    legend = (
        f"Times are wall seconds in the sandbox. A child of this codec may take, per clip, "
        f"quality and role, {settings.sandbox_time_multiple:g} times the parent's time, at "
        f"least {settings.sandbox_time_floor_s:g} s and at most {settings.sandbox_wall_s:g} s.",
    )
    sections = [Section("# Parent's results on the training clips", legend)]
    for clip_id, scored_at in latest.items():
        sections.append(_clip_section(session, settings, ladder, parent_id, clip_id, scored_at))
    return sections


def past_iteration(session: Session, row: EvolutionIteration) -> PastIteration:
    """What a prompt and the rule planner know of a finished iteration (training figures
    only): its change (the generation's note, else the plan's hypothesis) and outcome."""
    from aicodec.evolution.planner import PastIteration

    hypothesis = json.loads(row.plan_json).get("hypothesis") if row.plan_json else None
    change = generation_note(session, row.candidate_id) if row.candidate_id is not None else None
    return PastIteration(
        row.number,
        row.parent_id,
        row.candidate_id,
        row.status,
        row.failure_kind,
        row.reason,
        change or hypothesis,
        row.predicted_bd_rate,
        row.bd_rate_vs_parent,
        hypothesis,
    )


def stored_iterations(session: Session) -> tuple[int | None, list[PastIteration]]:
    """The newest evolve run with finished iterations and its last ones, newest first."""
    run_id, rows = latest_finished_iterations(session, ITERATIONS_SHOWN)
    return run_id, [past_iteration(session, row) for row in rows]


def iterations_section(
    settings: Settings, recent: Sequence[PastIteration], heading: str
) -> Section:
    """The recent iterations (newest first), one droppable line each."""
    blocks = tuple(
        Block(
            (past.line(settings.adopt_threshold_percent),),
            RANK_ITERATIONS if index < NEWEST_KEPT else RANK_OLDER_ITERATIONS,
            "older iterations",
            f"iteration {past.number}",
        )
        for index, past in enumerate(recent[:ITERATIONS_SHOWN])
    )
    return Section(heading, (), blocks)


def failures_section(lines: Sequence[str]) -> Section:
    """Recent failures with their exact errors (newest first), one droppable line each."""
    blocks = tuple(
        Block(
            (line,),
            RANK_FAILURES if index < NEWEST_KEPT else RANK_OLDER_FAILURES,
            "older failures",
            "1 failure",
        )
        for index, line in enumerate(lines)
    )
    return Section("# Recent failures (exact errors)", (), blocks)


def recent_failures(
    session: Session, clip_ids: Collection[int] | None, hidden: Collection[int]
) -> list[str]:
    """Failed runs (on ``clip_ids`` only, never of ``hidden`` candidates) and failed
    generations, newest first."""
    runs = failed_runs(session, clip_ids, hidden, FAILURES_SHOWN)
    lines = [f"- candidate {run.candidate_id}, quality {run.quality}: {run.error}" for run in runs]
    generations = failed_generations(session, FAILURES_SHOWN)
    return lines + [
        f"- generation {record.id} ({record.status}): {record.reason}" for record in generations
    ]


def _ladder(settings: Settings) -> Ladder | None:
    """The configured ladder, or None when it cannot be read (the prompt goes without)."""
    try:
        return load_ladder(settings.ladder_file)
    except AicodecError:
        return None


def gather(
    store: Store,
    settings: Settings,
    parent_id: int | None,
    *,
    clip_ids: Collection[int] | None = None,
    hidden: Collection[int] = (),
    recent: Sequence[PastIteration] | None = None,
    failures: bool = True,
    ladder: Ladder | None = None,
    qualities: Sequence[int] | None = None,
) -> PromptMaterial:
    """Everything a prompt shows for ``parent_id`` besides its code.

    ``clip_ids`` (the training clips) limits the figures and failures to those clips;
    ``recent`` is an evolve run's known iterations (newest first), else the store's newest
    evolve run is shown; ``failures`` adds the recent failures and the best codec (the
    generation prompt); ``qualities`` (a run's) limits the scores shown to those measured at
    them and picks the best codec at them (default: the parent's latest scores, and the best
    at the contract's default qualities).
    """
    ladder = ladder or _ladder(settings)
    with store.session() as session:
        sections: list[Section] = []
        if parent_id is not None:
            sections += parent_sections(session, settings, ladder, parent_id, clip_ids, qualities)
        if recent is not None:
            heading = "# This run's recent iterations, newest first"
        else:
            run_id, recent = stored_iterations(session)
            heading = f"# Recent iterations of evolve run {run_id}, newest first"
        if recent:
            sections.append(iterations_section(settings, recent, heading))
        if failures:
            lines = recent_failures(session, clip_ids, hidden)
            if lines:
                sections.append(failures_section(lines))
    best = None
    if failures:
        best_id = best_candidate(store, qualities or DEFAULT_QUALITIES, clip_ids, hidden)
        if best_id is not None and best_id != parent_id:
            record = find_candidate(store, best_id)
            best = f"candidate {best_id} ({record.name if record else '?'})"
    return PromptMaterial(tuple(sections), best)
