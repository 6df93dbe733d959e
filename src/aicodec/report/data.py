"""What a report shows, read from the store and nothing else: a run's clips and RD curves,
its codecs' and the ladder's encode times, its iterations, lineage, calibration, failures,
cost and time, and each candidate's code.

Every figure here is one the store already holds, read through ``aicodec.store.queries``
(or, for the BD-rates against the start, one ``aicodec.store.queries`` and
``aicodec.adoption`` compute from stored points; for the ladder's encoders against the
anchor, one ``bd_compare`` computes from their stored points as the ladder does); nothing is
measured again and nothing is written. This module only shapes what those queries return."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aicodec.errors import BDRateError, EvolutionError, ReportError
from aicodec.evolution import EvolveConfig, EvolveSummary, summarise
from aicodec.evolution.calibration import Calibration, calibration_of, stored_predictions
from aicodec.ladder import load_ladder
from aicodec.report.charts import TimePoint
from aicodec.scoring.bdrate import RDPoint, bd_compare
from aicodec.settings import Settings
from aicodec.store import Store
from aicodec.store.queries.calls import calls_by_purpose
from aicodec.store.queries.candidates import (
    StoredCandidate,
    candidate_iterations,
    child_ids,
    stored_candidate,
    stored_candidates,
)
from aicodec.store.queries.clips import StoredClip, stored_clip, stored_clips
from aicodec.store.queries.points import (
    StoredPoint,
    measured_points,
    stored_ladder_points,
    stored_points,
)
from aicodec.store.queries.runs import (
    RunListing,
    adoption_tags,
    evolution_run,
    iteration_plans,
    run_ids,
    run_listing,
)

LIVE_STATUSES = ("running",)


@dataclass
class CodecCurve:
    """A codec's stored RD points on one clip, one per quality."""

    label: str
    role: str  # start, adopted or best
    candidate_id: int
    points: list[StoredPoint]
    problem: str | None = None  # why the curve is short or missing


@dataclass
class ClipView:
    """One of the run's clips, with the ladder's curves and the run's codecs on it."""

    name: str
    role: str  # training or holdout
    clip_id: int | None
    size: str
    frames: int
    ladder: dict[str, list[dict[str, Any]]]  # encoder name -> points by kbit/s
    codecs: list[CodecCurve]


@dataclass
class CandidateView:
    """A candidate of the run: where it came from, how it did, its code and its diff."""

    id: int
    name: str
    origin: str
    parent_id: int | None
    source: str
    iteration: int | None  # None for the run's starting codec
    outcome: str  # start, adopted, not adopted, failed, running
    bd_rate: float | None  # mean BD-rate vs x264 on the training clips, percent
    tag: str | None
    diff: list[tuple[str, str]]  # (kind, line): kind is add, del, hunk, head or same
    parent_in_run: bool


@dataclass
class LineageNode:
    """A candidate in the run's tree, with the candidates bred from it."""

    candidate: CandidateView
    children: list[LineageNode] = field(default_factory=list)


@dataclass
class StageCost:
    """Wall time (seconds) and model cost (US dollars) spent in one stage of the run."""

    stage: str
    seconds: float
    cost_usd: float
    calls: int


@dataclass
class RunView:
    """Everything a run's report shows."""

    run_id: int
    batch: str
    status: str
    stop_reason: str | None
    provider: str
    created_at: datetime
    finished_at: datetime | None
    config: EvolveConfig
    summary: EvolveSummary
    clips: list[ClipView]
    iterations: list[dict[str, Any]]
    candidates: list[CandidateView]
    lineage: list[LineageNode]
    calibration: Calibration | None
    calibration_problem: str | None
    predictions: list[tuple[str, float, float]]  # planner, predicted, measured (percent)
    stages: list[StageCost]
    anchor: str = "x264-medium"  # the ladder's anchor, which the BD-rates are against
    # the ladder's encoders and the codecs shown: BD-rate vs the anchor against encode time
    # (both over the training clips: mean BD-rate, summed seconds)
    times: list[TimePoint] = field(default_factory=list)

    @property
    def live(self) -> bool:
        """Whether the run may still change (a page of it should refresh itself)."""
        return self.status in LIVE_STATUSES


def list_runs(store: Store) -> list[RunListing]:
    """Every evolve run in the store, newest first; ReportError when there is none."""
    listing = run_listing(store)
    if not listing:
        raise ReportError("the store holds no evolve run yet; start one with aicodec evolve")
    return listing


def latest_run_id(store: Store) -> int:
    """The newest run's id; ReportError when the store holds none."""
    return list_runs(store)[0].run_id


def outcome_of(entry: dict[str, Any]) -> str:
    """An iteration's outcome as the report names it."""
    if entry["status"] == "failed":
        return "failed"
    if entry["status"] == "scored":
        return "adopted" if entry["adopted"] else "not adopted"
    return "running"


def code_diff(
    parent: str, child: str, parent_label: str, child_label: str
) -> list[tuple[str, str]]:
    """A unified diff (3 lines of context) of two sources, each line with its kind."""
    lines = difflib.unified_diff(
        parent.splitlines(), child.splitlines(), parent_label, child_label, lineterm=""
    )
    marked: list[tuple[str, str]] = []
    for index, line in enumerate(lines):
        if index < 2:  # the two file lines; a body line may start with --- too
            kind = "head"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "same"
        marked.append((kind, line))
    return marked


def candidate_diff(parent: StoredCandidate | None, child: StoredCandidate) -> list[tuple[str, str]]:
    """A stored candidate's diff against its parent's code (none without a parent)."""
    if parent is None:
        return []
    return code_diff(parent.source, child.source, f"candidate {parent.id}", f"candidate {child.id}")


def source_edits(parent: str, child: str) -> list[list[int] | list[str]]:
    """The child's lines as edits of the parent's: ``[i, j]`` keeps the parent's lines i..j-1,
    a list of strings inserts those lines. A page rebuilds the child's code from these."""
    old, new = parent.splitlines(), child.splitlines()
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    edits: list[list[int] | list[str]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            edits.append([i1, i2])
        elif j2 > j1:
            edits.append(new[j1:j2])
    return edits


def apply_edits(parent: str, edits: Sequence[Sequence[Any]]) -> str:
    """The child's source from its parent's and ``source_edits`` (the pages' JS does the same)."""
    old = parent.splitlines()
    lines: list[str] = []
    for edit in edits:
        if edit and all(isinstance(value, int) for value in edit):
            lines += old[edit[0] : edit[1]]
        else:
            lines += list(edit)
    return "\n".join(lines)


def _stages(
    by_stage: dict[str, tuple[int, float]], entries: list[dict[str, Any]]
) -> list[StageCost]:
    """Wall seconds per stage over the run's iterations, beside the model calls' count and
    cost per purpose (``by_stage``)."""
    seconds: dict[str, float] = {}
    for entry in entries:
        for stage, value in (entry["stage_seconds"] or {}).items():
            seconds[stage] = seconds.get(stage, 0) + float(value or 0.0)
    stages = sorted(set(seconds) | set(by_stage), key=lambda s: (-seconds.get(s, 0.0), s))
    return [
        StageCost(
            stage,
            seconds.get(stage, 0.0),
            by_stage.get(stage, (0, 0.0))[1],
            by_stage.get(stage, (0, 0.0))[0],
        )
        for stage in stages
    ]


def _codecs_shown(summary: EvolveSummary, tags: dict[int, str]) -> list[tuple[str, str, int]]:
    """(label, role, candidate) of the codecs drawn on the RD charts: the start, each adopted
    codec with its tag, and the best one, each once."""
    shown: list[tuple[str, str, int]] = [
        (f"start #{summary.start_candidate}", "start", summary.start_candidate)
    ]
    for adoption in summary.adoptions:
        tag = tags.get(adoption["iteration"], "adopted")
        shown.append((f"{tag} #{adoption['candidate']}", "adopted", adoption["candidate"]))
    best = summary.best_candidate
    if best is not None:
        for index, (label, _, candidate) in enumerate(shown):
            if candidate == best:
                shown[index] = (f"{label} (best)", "best", candidate)
                break
        else:
            shown.append((f"best #{best}", "best", best))
    return shown


def _clip_views(
    store: Store,
    settings: Settings,
    config: EvolveConfig,
    summary: EvolveSummary,
    tags: dict[int, str],
) -> list[ClipView]:
    """The run's training and holdout clips with the ladder's and the codecs' stored curves."""
    ladder = load_ladder(settings.ladder_file)
    described = {"training": summary.training_clips, "holdout": summary.holdout_clips}
    views: list[ClipView] = []
    with store.session() as session:
        for role in ("training", "holdout"):
            for clip in described[role]:
                record = stored_clip(session, clip["id"]) if clip["id"] is not None else None
                if record is None:
                    views.append(ClipView(clip["name"], role, None, "?", 0, {}, []))
                    continue
                curves = stored_ladder_points(session, ladder, record.id)
                ladder_points = {
                    name: [
                        {
                            "kbps": row.kbps,
                            "psnr_y": row.psnr_y,
                            "psnr_yuv": row.psnr_yuv,
                            "ssim_y": row.ssim_y,
                            "encode_seconds": row.encode_seconds,
                            "rate": f"{row.rate_option} {row.rate_value}",
                        }
                        for row in rows
                    ]
                    for name, rows in curves.items()
                }
                codecs = []
                for label, kind, candidate in _codecs_shown(summary, tags):
                    points, problem = stored_points(session, candidate, record.id, config.qualities)
                    codecs.append(CodecCurve(label, kind, candidate, points, problem))
                views.append(
                    ClipView(
                        clip["name"],
                        role,
                        record.id,
                        f"{record.width}x{record.height}",
                        record.frame_count,
                        ladder_points,
                        codecs,
                    )
                )
    return views


def _bd_vs_anchor(
    anchor: list[dict[str, Any]], curve: list[dict[str, Any]], settings: Settings
) -> float | None:
    """BD-rate (percent, PSNR-Y) of a ladder encoder's stored points against the anchor's,
    as the ladder computes it; None where it is undefined."""
    try:
        found = bd_compare(
            [RDPoint(p["kbps"], p["psnr_y"]) for p in anchor],
            [RDPoint(p["kbps"], p["psnr_y"]) for p in curve],
            method=settings.bd_method,
            min_overlap=settings.bd_min_overlap,
        )
    except BDRateError:
        return None
    return found.bd_rate_percent


def _time_points(
    settings: Settings, anchor: str, clips: list[ClipView], candidates: list[CandidateView]
) -> list[TimePoint]:
    """Each ladder encoder and each codec shown on the RD charts at its BD-rate vs the
    anchor (the mean over the training clips; a codec's as its iteration scored it) and its
    encode time (seconds summed over its rate points on the training clips). One that lacks
    a BD-rate or a time on some training clip is left out."""
    training = [clip for clip in clips if clip.role == "training" and clip.clip_id is not None]
    if not training:
        return []
    points: list[TimePoint] = []
    for name in training[0].ladder:
        rates: list[float] = []
        seconds = 0.0
        for clip in training:
            curve, reference = clip.ladder.get(name), clip.ladder.get(anchor)
            rate = 0.0 if name == anchor else None
            if curve and reference and name != anchor:
                rate = _bd_vs_anchor(reference, curve, settings)
            if not curve or rate is None:
                break
            rates.append(rate)
            seconds += sum(float(p["encode_seconds"]) for p in curve)
        else:
            points.append(TimePoint(name, seconds, sum(rates) / len(rates), "ladder"))
    bd_rates = {candidate.id: candidate.bd_rate for candidate in candidates}
    for index, codec in enumerate(training[0].codecs):
        curves = [clip.codecs[index] for clip in training]
        times = [p.encode_seconds for curve in curves for p in curve.points]
        rate = bd_rates.get(codec.candidate_id)
        if rate is None or not times or any(c.problem for c in curves) or None in times:
            continue
        points.append(TimePoint(codec.label, sum(t or 0.0 for t in times), rate, codec.role))
    return points


def _candidate_views(
    store: Store, summary: EvolveSummary, entries: list[dict[str, Any]], tags: dict[int, str]
) -> list[CandidateView]:
    """The run's starting codec and every candidate its iterations made, in iteration order."""
    order: list[tuple[int, dict[str, Any] | None]] = [(summary.start_candidate, None)]
    seen = {summary.start_candidate}
    for item in entries:
        if item["candidate"] is not None and item["candidate"] not in seen:
            order.append((item["candidate"], item))
            seen.add(item["candidate"])
    parents = {e["parent"] for e in entries if e["parent"] is not None}
    with store.session() as session:
        records = stored_candidates(session, seen | parents)
    views: list[CandidateView] = []
    for candidate_id, entry in order:
        record = records[candidate_id]
        parent_id = entry["parent"] if entry else record.parent_id
        parent = records.get(parent_id) if parent_id is not None else None
        diff = candidate_diff(parent, record)
        origin = (entry["origin"] if entry else None) or record.origin
        views.append(
            CandidateView(
                id=record.id,
                name=record.name,
                origin=origin,
                parent_id=parent_id,
                source=record.source,
                iteration=entry["iteration"] if entry else None,
                outcome=outcome_of(entry) if entry else "start",
                bd_rate=entry["bd_rate"] if entry else summary.start_bd_rate_vs_x264,
                tag=tags.get(entry["iteration"]) if entry else None,
                diff=diff,
                parent_in_run=parent_id in seen,
            )
        )
    return views


def lineage(candidates: Sequence[CandidateView]) -> list[LineageNode]:
    """The run's candidates as a forest: each under its parent, roots where the parent is
    not one of the run's candidates."""
    nodes = {view.id: LineageNode(view) for view in candidates}
    roots: list[LineageNode] = []
    for view in candidates:
        parent = nodes.get(view.parent_id) if view.parent_id is not None else None
        if parent is None or parent is nodes[view.id]:
            roots.append(nodes[view.id])
        else:
            parent.children.append(nodes[view.id])
    return roots


def run_view(store: Store, settings: Settings, run_id: int | None = None) -> RunView:
    """A run's report (default: the newest run); ReportError for a store with no run or a
    run id that is not in it."""
    if run_id is None:
        run_id = latest_run_id(store)
    with store.session() as session:
        run = evolution_run(session, run_id)
        if run is None:
            known = run_ids(session)
            shown = ", ".join(str(n) for n in known) if known else "none"
            raise ReportError(f"no evolve run {run_id} in the store (runs: {shown})")
        config = EvolveConfig.from_json(run.config_json)
        head = (
            run.batch,
            run.status,
            run.stop_reason,
            f"{run.provider} ({run.provider_reason})",
            run.created_at,
            run.finished_at,
        )
        tags = adoption_tags(session, run_id)
        plans = iteration_plans(session, run_id)
    try:
        summary = summarise(store, settings, run_id)
    except EvolutionError as exc:
        raise ReportError(str(exc)) from exc
    entries = summary.iterations
    for entry in entries:
        plan = plans.get(entry["iteration"], {})
        entry["outcome"] = outcome_of(entry)
        entry["tag"] = tags.get(entry["iteration"])
        entry["root_cause"] = plan.get("root_cause")
        entry["steps"] = plan.get("steps")
    candidates = _candidate_views(store, summary, entries, tags)
    calibration, problem = None, None
    pooled, predictions = stored_predictions(store, run_id)
    try:
        calibration = calibration_of(pooled, predictions)
    except EvolutionError as exc:
        problem = str(exc)
    with store.session() as session:
        stages = _stages(calls_by_purpose(session, head[0]), entries)
    clips = _clip_views(store, settings, config, summary, tags)
    anchor = load_ladder(settings.ladder_file).anchor
    return RunView(
        run_id,
        *head,
        config=config,
        summary=summary,
        clips=clips,
        iterations=entries,
        candidates=candidates,
        lineage=lineage(candidates),
        calibration=calibration,
        calibration_problem=problem,
        predictions=[(p.planner, p.predicted, p.measured) for p in predictions],
        stages=stages,
        anchor=anchor,
        times=_time_points(settings, anchor, clips, candidates),
    )


@dataclass
class CandidatePage:
    """One candidate on its own: its record, code, parent's diff, children and stored scores."""

    id: int
    name: str
    origin: str
    parent_id: int | None
    source: str
    created_at: datetime
    diff: list[tuple[str, str]]
    children: list[int]
    iterations: list[tuple[int, int, str]]  # (run, iteration, outcome)
    points: dict[str, list[StoredPoint]]  # clip name -> newest ok point per quality


def _clip_label(clips: dict[int, StoredClip], clip_id: int) -> str:
    """A clip as the candidate page names it: name, frame size and frame count."""
    clip = clips.get(clip_id)
    if clip is None:
        return str(clip_id)
    return f"{clip.name} ({clip.width}x{clip.height}, {clip.frame_count} frames)"


def _points_by_clip(
    measured: list[tuple[int, StoredPoint]], clips: dict[int, StoredClip]
) -> dict[str, list[StoredPoint]]:
    """The newest of the measured points (oldest first, each with its clip) per clip and
    quality, by clip label, each clip's by quality."""
    points: dict[str, dict[int, StoredPoint]] = {}
    for clip_id, point in measured:  # newest last, so it wins
        points.setdefault(_clip_label(clips, clip_id), {})[point.quality] = point
    return {clip: [found[q] for q in sorted(found)] for clip, found in points.items()}


def candidate_page(store: Store, candidate_id: int) -> CandidatePage:
    """A candidate's page data; ReportError when the store has no such candidate."""
    with store.session() as session:
        record = stored_candidate(session, candidate_id)
        if record is None:
            raise ReportError(f"no candidate {candidate_id} in the store")
        parent = stored_candidate(session, record.parent_id) if record.parent_id else None
        iterations = [
            (run, number, outcome_of({"status": status, "adopted": adopted}))
            for run, number, status, adopted in candidate_iterations(session, candidate_id)
        ]
        children = child_ids(session, candidate_id)
        points = _points_by_clip(measured_points(session, candidate_id), stored_clips(session))
    return CandidatePage(
        record.id,
        record.name,
        record.origin,
        record.parent_id,
        record.source,
        record.created_at,
        candidate_diff(parent, record),
        children,
        iterations,
        points,
    )
