"""Scoring a candidate: sandbox runs measured by the lab's metrics, RD curve and BD-rates."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aicodec.candidates import code_hash
from aicodec.candidates.contract import QUALITY_MAX, QUALITY_MIN
from aicodec.candidates.records import record_candidate
from aicodec.clips import Clip
from aicodec.clips.records import record_clip
from aicodec.errors import BDRateError, ConfigError, SandboxError, ValidationError
from aicodec.ladder import Ladder, LadderProgress, LadderResult, run_ladder
from aicodec.sandbox.execute import (
    CandidateRun,
    PointRun,
    ReferenceTimes,
    point_isolation,
    run_candidate_on_clips,
)
from aicodec.scoring.bdrate import bd_compare
from aicodec.scoring.metrics import MEASURED_FIELDS, EncodedQuality, json_safe, measure_encoding
from aicodec.scoring.rate_metrics import PSNR_Y, RateMetric
from aicodec.settings import Settings
from aicodec.store import RunRecord, ScoreRecord, Store
from aicodec.store.queries.points import latest_ok_run, normal_qualities, quality_key

# measured fields kept in a candidate_runs row (the frame count is the clip's)
STORED_FIELDS = tuple(name for name in MEASURED_FIELDS if name != "frames")


@dataclass(frozen=True)
class ScoredPoint(EncodedQuality):
    """One rate point of a candidate; encode and decode seconds are the calls in the sandbox."""

    quality: int
    decode_seconds: float

    @property
    def decode_fps(self) -> float:
        """Decoding speed: frames per second of the decode call in the sandbox."""
        return self.frames / self.decode_seconds if self.decode_seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, object]:
        """JSON-ready point; VMAF only when measured."""
        return {
            "quality": self.quality,
            **self.measured(),
            "decode_seconds": self.decode_seconds,
            "decode_fps": self.decode_fps,
        }


@dataclass
class RunOutcome:
    """A candidate's measured points on a clip, and how they were obtained."""

    candidate_id: int
    code_hash: str
    name: str
    clip: Clip
    points: list[ScoredPoint]
    isolation: str
    reused: bool
    run: CandidateRun | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready outcome."""
        return {
            "candidate": {"id": self.candidate_id, "name": self.name, "code_hash": self.code_hash},
            "clip": self.clip.describe(),
            "isolation": self.isolation,
            "reused": self.reused,
            "points": [point.to_dict() for point in self.points],
        }


@dataclass
class ScoreOutcome(RunOutcome):
    """A scored candidate: its points plus BD-rate against each encoder of the ladder."""

    bd_rate_vs: dict[str, float | None] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready score: ``points`` and ``bd_rate_vs`` (encoder -> percent)."""
        data = super().to_dict()
        data["bd_rate_vs"] = self.bd_rate_vs
        data["warnings"] = self.warnings
        return data


def parse_qualities(text: str | None) -> list[int]:
    """Parse ``80,40,20,60`` into qualities within the contract's range, sorted, each once."""
    from aicodec.candidates.contract import DEFAULT_QUALITIES

    if text is None:
        return normal_qualities(DEFAULT_QUALITIES)
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--qualities {text!r} must be integers like 20,40,60,80") from None
    if not values:
        raise ConfigError(f"--qualities {text!r} lists no quality")
    if not all(QUALITY_MIN <= value <= QUALITY_MAX for value in values):
        raise ConfigError(f"--qualities must lie within {QUALITY_MIN}..{QUALITY_MAX}")
    return normal_qualities(values)


def validate_or_raise(source: str) -> None:
    """Static validation; ValidationError with the first violation (rule and line)."""
    from aicodec.validation import validate_source

    report = validate_source(source)
    if not report.valid:
        first = report.violations[0]
        more = len(report.violations) - 1
        extra = f" (+{more} more; see aicodec validate)" if more else ""
        raise ValidationError(f"validate: line {first.line}: [{first.rule}] {first.message}{extra}")


def _measure(point: PointRun, clip: Clip, settings: Settings, with_vmaf: bool) -> ScoredPoint:
    """The lab's own measurements of one decoded point against the source clip."""
    assert point.decoded is not None and point.bitstream is not None
    decode_seconds = min(report.call_seconds or 0.0 for report in point.decodes)
    measured = measure_encoding(
        clip.frames,
        point.decoded,
        len(point.bitstream),
        point.encode.call_seconds or 0.0,
        settings=settings,
        with_vmaf=with_vmaf,
    )
    return ScoredPoint(quality=point.quality, decode_seconds=decode_seconds, **measured)  # type: ignore[arg-type]


def _store_points(
    store: Store,
    candidate_id: int,
    clip_id: int,
    layers: str,
    points: Sequence[PointRun],
    scored: dict[int, ScoredPoint],
) -> None:
    """Store points of a run (failed ones with their stage and error) in one transaction;
    ``layers`` is the run's isolation as stored."""
    with store.session() as session:
        for point in points:
            measured = scored.get(point.quality)
            walls = [report.wall_seconds for report in point.decodes]
            row = RunRecord(
                candidate_id=candidate_id,
                clip_id=clip_id,
                quality=point.quality,
                status="ok" if point.ok else "failed",
                stage=point.failed_stage,
                error=point.error,
                isolation=layers,
                bytes=len(point.bitstream) if point.bitstream is not None else None,
                encode_wall_seconds=point.encode.wall_seconds,
                decode_wall_seconds=min(walls) if walls else None,
                deterministic=point.deterministic,
                bitstream_sha256=hashlib.sha256(point.bitstream).hexdigest()
                if point.bitstream is not None
                else None,
                decoded_sha256=point.decoded_sha256,
            )
            if measured is not None:
                for name in (*STORED_FIELDS, "decode_seconds"):
                    setattr(row, name, getattr(measured, name))
                row.frame_psnr_y_json = json.dumps(json_safe(list(measured.frame_psnr_y)))
            session.add(row)


def stored_frame_psnr_y(row: RunRecord) -> tuple[float, ...]:
    """A stored run's per-frame PSNR-Y in dB (inf for a lossless frame); empty when the run
    was stored before the lab kept it."""
    if not row.frame_psnr_y_json:
        return ()
    return tuple(
        math.inf if value is None else float(value) for value in json.loads(row.frame_psnr_y_json)
    )


def _stored_points(
    store: Store, candidate_id: int, clip: Clip, clip_id: int, qualities: Sequence[int], vmaf: bool
) -> tuple[dict[int, ScoredPoint], str]:
    """The latest successful stored run of each quality that has one (with VMAF when
    ``vmaf``), and the isolation of the last of them ("" when none)."""
    points: dict[int, ScoredPoint] = {}
    isolation = ""
    with store.session() as session:
        for quality in qualities:
            row = latest_ok_run(session, candidate_id, clip_id, quality)
            if row is None or (vmaf and row.vmaf is None):
                continue
            isolation = row.isolation
            fields = {name: getattr(row, name) for name in STORED_FIELDS}
            points[quality] = ScoredPoint(
                quality=quality,
                decode_seconds=row.decode_seconds or 0.0,
                frames=clip.frames.count,
                frame_psnr_y=stored_frame_psnr_y(row),
                **fields,
            )
    return points, isolation


def reference_times(
    store: Store,
    candidate_id: int,
    clips: Sequence[tuple[Clip, int]],
    qualities: Sequence[int],
) -> ReferenceTimes:
    """A stored codec's wall seconds per (clip hash, quality, role) from its latest
    successful runs on ``clips`` (each with its store id): what a child of a related codec
    may take is measured against them."""
    times: ReferenceTimes = {}
    with store.session() as session:
        for clip, clip_id in clips:
            for quality in qualities:
                row = latest_ok_run(session, candidate_id, clip_id, quality)
                if row is None:
                    continue
                for role, seconds in (
                    ("encode", row.encode_wall_seconds),
                    ("decode", row.decode_wall_seconds),
                ):
                    if seconds:
                        times[(clip.content_hash, quality, role)] = seconds
    return times


def measure_candidate(
    source: str,
    name: str,
    clips: Sequence[Clip],
    store: Store,
    settings: Settings,
    qualities: Sequence[int],
    *,
    reference_id: int | None = None,
    keep_dir: Path | None = None,
    with_vmaf: bool = False,
    reuse: bool = True,
    progress: Callable[[str], None] | None = None,
) -> list[RunOutcome]:
    """Validate, record, run in the sandbox (or reuse stored runs) and measure every point
    of every clip; the clips that need running share one pool of jobs.

    With ``reuse`` (and no ``keep_dir``) a point stored by an earlier run is taken as it
    is and only the missing points run. Each point is measured and stored as soon as it
    decoded correctly, so a run cut short (Ctrl-C, a crash of the lab) keeps the points it
    finished for the next one. ``reference_id`` is a stored codec (the parent) whose times
    bound each child's wall clock. Raises ValidationError or SandboxError (one line: clip,
    quality, stage, what happened) after storing what happened.
    """
    validate_or_raise(source)
    qualities = normal_qualities(qualities)
    candidate_id = record_candidate(store, source, name)
    digest = code_hash(source)
    clip_ids = [record_clip(store, clip) for clip in clips]
    points = _ClipPoints(store, settings, candidate_id, clips, clip_ids, with_vmaf)
    if reuse and keep_dir is None:
        points.take_stored(qualities)
    missing = [[quality for quality in qualities if quality not in found] for found in points.known]
    ran = points.run(source, name, qualities, missing, reference_id, keep_dir, progress)
    outcomes = []
    for index, clip in enumerate(clips):
        known = [points.known[index][quality] for quality in qualities]
        isolation, run = points.isolations[index], ran.get(index)
        reused = index not in ran  # every point came from the store
        outcomes.append(RunOutcome(candidate_id, digest, name, clip, known, isolation, reused, run))
    return outcomes


class _ClipPoints:
    """A candidate's points on each of its clips (by clip index, then quality) and each
    clip's isolation as stored: taken from the store, or run, measured and stored."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        candidate_id: int,
        clips: Sequence[Clip],
        clip_ids: list[int],
        with_vmaf: bool,
    ) -> None:
        self.store, self.settings, self.candidate_id = store, settings, candidate_id
        self.clips, self.clip_ids, self.with_vmaf = clips, clip_ids, with_vmaf
        self.known: list[dict[int, ScoredPoint]] = [{} for _ in clips]
        self.isolations = [""] * len(clips)

    def take_stored(self, qualities: Sequence[int]) -> None:
        """Take the points of ``qualities`` that earlier runs stored, clip by clip."""
        for index, (clip, clip_id) in enumerate(zip(self.clips, self.clip_ids, strict=True)):
            self.known[index], self.isolations[index] = _stored_points(
                self.store, self.candidate_id, clip, clip_id, qualities, self.with_vmaf
            )

    def keep(self, index: int, point: PointRun) -> None:
        """Measure a point of clip ``index`` that decoded correctly, and store it."""
        measured = _measure(point, self.clips[index], self.settings, self.with_vmaf)
        layers = point_isolation(point, self.settings)
        scored = {point.quality: measured}
        _store_points(self.store, self.candidate_id, self.clip_ids[index], layers, [point], scored)
        self.known[index][point.quality], self.isolations[index] = measured, layers

    def run(
        self,
        source: str,
        name: str,
        qualities: Sequence[int],
        missing: list[list[int]],
        reference_id: int | None,
        keep_dir: Path | None,
        progress: Callable[[str], None] | None,
    ) -> dict[int, CandidateRun]:
        """Run the ``missing`` qualities of each clip on one pool, keeping each point as it
        decodes; the runs by clip index. SandboxError (one line) after storing the failed
        points: the failure that stopped the runs, not a clip cancelled because of it."""
        to_run = [index for index in range(len(self.clips)) if missing[index]]
        if not to_run:
            return {}
        references = {}
        if reference_id is not None:
            pairs = [(self.clips[index], self.clip_ids[index]) for index in to_run]
            references = reference_times(self.store, reference_id, pairs, qualities)
        runs = run_candidate_on_clips(
            source,
            [self.clips[index] for index in to_run],
            qualities,
            self.settings,
            references=references,
            keep_dir=keep_dir,
            progress=progress,
            per_clip=[missing[index] for index in to_run],
            on_point=lambda position, point: self.keep(to_run[position], point),  # store it now
        )
        failures: list[tuple[bool, str]] = []  # (only cancelled points, one line)
        for index, run in zip(to_run, runs, strict=True):
            failed = [point for point in run.points if not point.ok]
            layers = f"{run.isolation}: {', '.join(run.layers)}"
            _store_points(self.store, self.candidate_id, self.clip_ids[index], layers, failed, {})
            if failed:
                line = f"{name} on {run.clip.name}, {run.first_error()}"
                failures.append((run.only_cancelled, line))
        if failures:  # the failure that stopped the run, not a clip cancelled because of it
            raise SandboxError(sorted(failures, key=lambda failure: failure[0])[0][1])
        return dict(zip(to_run, runs, strict=True))


def run_and_measure(
    source: str,
    name: str,
    clip: Clip,
    store: Store,
    settings: Settings,
    qualities: Sequence[int],
    *,
    keep_dir: Path | None = None,
    with_vmaf: bool = False,
    reuse: bool = True,
    progress: Callable[[str], None] | None = None,
) -> RunOutcome:
    """``measure_candidate`` on one clip."""
    return measure_candidate(
        source,
        name,
        [clip],
        store,
        settings,
        qualities,
        keep_dir=keep_dir,
        with_vmaf=with_vmaf,
        reuse=reuse,
        progress=progress,
    )[0]


def score_clips(
    source: str,
    name: str,
    clips: Sequence[Clip],
    store: Store,
    settings: Settings,
    ladder: Ladder,
    qualities: Sequence[int],
    *,
    encoders: list[str] | None = None,
    reference_id: int | None = None,
    keep_dir: Path | None = None,
    with_vmaf: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[ScoreOutcome]:
    """Run and measure a candidate on every clip (one pool), then per clip its BD-rate
    against each encoder of the ladder; ``reference_id`` as in ``measure_candidate``."""
    outcomes = measure_candidate(
        source,
        name,
        clips,
        store,
        settings,
        qualities,
        reference_id=reference_id,
        keep_dir=keep_dir,
        with_vmaf=with_vmaf,
        progress=progress,
    )
    return [
        _compare_with_ladder(outcome, store, settings, ladder, qualities, encoders, progress)
        for outcome in outcomes
    ]


def score_candidate(
    source: str,
    name: str,
    clip: Clip,
    store: Store,
    settings: Settings,
    ladder: Ladder,
    qualities: Sequence[int],
    *,
    encoders: list[str] | None = None,
    keep_dir: Path | None = None,
    with_vmaf: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ScoreOutcome:
    """``score_clips`` on one clip."""
    return score_clips(
        source,
        name,
        [clip],
        store,
        settings,
        ladder,
        qualities,
        encoders=encoders,
        keep_dir=keep_dir,
        with_vmaf=with_vmaf,
        progress=progress,
    )[0]


def _compare_with_ladder(
    outcome: RunOutcome,
    store: Store,
    settings: Settings,
    ladder: Ladder,
    qualities: Sequence[int],
    encoders: list[str] | None,
    progress: Callable[[str], None] | None,
) -> ScoreOutcome:
    """The ladder on the outcome's clip, the BD-rates against it, stored as a score row."""

    def on_ladder(event: LadderProgress) -> None:
        if progress is not None and event.rate_value is not None and not event.cached:
            rate = f"{event.rate_option} {event.rate_value}"
            progress(f"ladder {event.encoder} {rate} on {outcome.clip.name}")

    baselines = run_ladder(
        outcome.clip, store, settings, ladder, encoders=encoders, progress=on_ladder
    )
    result = ScoreOutcome(**vars(outcome))
    result.bd_rate_vs, result.warnings = bd_rates_against(baselines, outcome.points, settings)
    store_score(store, outcome, qualities, result.bd_rate_vs)
    return result


def bd_rates_against(
    baselines: LadderResult,
    points: Sequence[EncodedQuality],
    settings: Settings,
    metric: RateMetric = PSNR_Y,
) -> tuple[dict[str, float | None], list[str]]:
    """BD-rate (percent) of ``points`` against each encoder of ``baselines`` on ``metric``
    (None where undefined), and the warnings: undefined deltas, small overlaps."""
    curve = metric.curve(points)
    rates: dict[str, float | None] = {}
    warnings: list[str] = []
    for encoder, anchor in baselines.encoders.items():
        try:
            bd = bd_compare(
                metric.curve(anchor.points),
                curve,
                method=settings.bd_method,
                min_overlap=settings.bd_min_overlap,
            )
        except BDRateError as exc:
            rates[encoder] = None
            warnings.append(f"BD-rate{metric.on} vs {encoder} undefined: {exc}")
            continue
        rates[encoder] = bd.bd_rate_percent
        if bd.overlap_psnr < settings.bd_min_overlap:
            warnings.append(
                f"{metric.label} overlap with {encoder} is {bd.overlap_psnr:.0%}: the BD-rate "
                "covers only the shared part"
            )
    return rates, warnings


def store_score(
    store: Store,
    outcome: RunOutcome,
    qualities: Sequence[int],
    bd_rate_vs: dict[str, float | None],
) -> None:
    """Keep a scoring's BD-rates (PSNR-Y, percent, per encoder) as a score row."""
    with store.session() as session:
        session.add(
            ScoreRecord(
                candidate_id=outcome.candidate_id,
                clip_id=record_clip(store, outcome.clip),
                qualities=quality_key(qualities),
                bd_rate_json=json.dumps(bd_rate_vs),
            )
        )
