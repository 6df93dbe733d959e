"""Scoring a codec on a test set: every clip run and measured on one pool, every clip's
ladder on another, then the figures per clip, per class and over the set."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aicodec.clips import Clip
from aicodec.ladder import Ladder, LadderProgress, LadderResult, run_ladders
from aicodec.scoring.candidate import RunOutcome, measure_candidate, store_score
from aicodec.scoring.rate_metrics import PSNR_Y, RateMetric
from aicodec.settings import Settings
from aicodec.store import Store
from aicodec.suites.figures import (
    AnchorFigures,
    class_figures,
    geometric_mean,
    mean_or_none,
    mean_seconds,
    time_ratio,
    versus_anchors,
)
from aicodec.suites.sets import SetClip, TestSet

ALL_CLASSES = "all"  # the name of the whole set's row


@dataclass
class ClipResult:
    """The codec on one clip of the set: its points, the ladder's curves, its figures."""

    entry: SetClip
    outcome: RunOutcome
    ladder: LadderResult
    versus: dict[str, AnchorFigures]

    @property
    def clip(self) -> Clip:
        """The clip as loaded."""
        return self.outcome.clip

    def to_dict(self) -> dict[str, object]:
        """JSON-ready clip result: its entry, its frames, the codec's points, the figures."""
        return {
            **self.entry.to_dict(),
            "clip": self.clip.describe(),
            "points": [point.to_dict() for point in self.outcome.points],
            "anchors": {
                name: {
                    "rate_option": curve.rate_option,
                    "points": [point.to_dict() for point in curve.points],
                    "bd_rate_vs_ladder_anchor": curve.bd_rate_vs.get(self.ladder.anchor),
                }
                for name, curve in self.ladder.encoders.items()
            },
            "versus": {name: figures.to_dict() for name, figures in self.versus.items()},
        }


@dataclass
class ClassResult:
    """A class of the set (or the whole set): its clips and their averaged figures."""

    name: str
    clips: list[str]
    versus: dict[str, AnchorFigures]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready class result."""
        return {
            "name": self.name,
            "clips": self.clips,
            "versus": {name: figures.to_dict() for name, figures in self.versus.items()},
        }


@dataclass
class SuiteResult:
    """A codec scored on a test set against the ladder's encoders."""

    codec: str
    candidate_id: int
    code_hash: str
    test_set: TestSet
    qualities: list[int]
    metrics: list[RateMetric]
    anchors: list[str]  # the encoders compared with; the ladder's anchor first
    ladder_anchor: str
    clips: list[ClipResult]
    classes: list[ClassResult]
    overall: ClassResult
    seconds: float
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready suite result."""
        return {
            "codec": {"name": self.codec, "id": self.candidate_id, "code_hash": self.code_hash},
            "set": self.test_set.to_dict(),
            "qualities": self.qualities,
            "metrics": [metric.name for metric in self.metrics],
            "anchors": self.anchors,
            "ladder_anchor": self.ladder_anchor,
            "clips": [clip.to_dict() for clip in self.clips],
            "classes": [klass.to_dict() for klass in self.classes],
            "overall": self.overall.to_dict(),
            "speed": [point.to_dict() for point in speed_points(self)],
            "seconds": self.seconds,
            "warnings": self.warnings,
        }


@dataclass(frozen=True)
class SpeedPoint:
    """A codec of the suite on the rate/time plane: its mean BD-rate (PSNR-Y, percent) against
    the ladder's anchor over the set and its encode time as a ratio of the anchor's
    (geometric mean over the clips; the anchor itself is at 1)."""

    name: str
    encode_time: float | None
    bd_rate: float | None
    role: str  # codec or anchor

    def to_dict(self) -> dict[str, object]:
        """JSON-ready point."""
        return {
            "name": self.name,
            "encode_time": self.encode_time,
            "bd_rate": self.bd_rate,
            "role": self.role,
        }


def speed_points(result: SuiteResult) -> list[SpeedPoint]:
    """The suite's codec and every anchor as (encode time, BD-rate) against the ladder's
    anchor, for the Pareto front of rate against encode time."""
    anchor = result.ladder_anchor
    codec = result.overall.versus[anchor]
    points = [SpeedPoint(result.codec, codec.encode_time, codec.bd_rate[PSNR_Y.name], "codec")]
    for name in result.anchors:
        rates, ratios = [], []
        for clip in result.clips:
            curves = clip.ladder.encoders
            rates.append(curves[name].bd_rate_vs.get(anchor))
            ratios.append(
                time_ratio(
                    mean_seconds(point.encode_seconds for point in curves[name].points),
                    mean_seconds(point.encode_seconds for point in curves[anchor].points),
                )
            )
        points.append(SpeedPoint(name, geometric_mean(ratios), mean_or_none(rates), "anchor"))
    return points


def run_suite(
    source: str,
    name: str,
    test_set: TestSet,
    store: Store,
    settings: Settings,
    ladder: Ladder,
    qualities: Sequence[int],
    metrics: Sequence[RateMetric],
    *,
    encoders: list[str] | None = None,
    with_vmaf: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SuiteResult:
    """Score ``source`` on every clip of ``test_set``: its runs on all clips share one pool
    of jobs, the ladders of all clips another; stored runs and encodes are reused. Each
    clip's PSNR-Y BD-rates are stored as a score row, as ``aicodec score`` stores them."""
    started = time.monotonic()
    say = progress or (lambda _text: None)
    clips = []
    for entry in test_set.clips:
        say(f"loading {entry.name}")
        clips.append(entry.load(settings))
    outcomes = measure_candidate(
        source, name, clips, store, settings, qualities, with_vmaf=with_vmaf, progress=progress
    )

    def on_ladder(clip: Clip, event: LadderProgress) -> None:
        if event.rate_value is not None and not event.cached:
            say(f"ladder {event.encoder} {event.rate_option} {event.rate_value} on {clip.name}")

    say("ladders")
    ladders = run_ladders(
        clips, store, settings, ladder, encoders=encoders, with_vmaf=with_vmaf, progress=on_ladder
    )
    results, warnings = [], []
    for entry, outcome, baselines in zip(test_set.clips, outcomes, ladders, strict=True):
        versus, notes = versus_anchors(baselines, outcome.points, metrics, settings)
        warnings += [f"{entry.name}: {note}" for note in notes]
        psnr_y = {anchor: figures.bd_rate[PSNR_Y.name] for anchor, figures in versus.items()}
        store_score(store, outcome, qualities, psnr_y)
        results.append(ClipResult(entry, outcome, baselines, versus))
    anchors = sorted(ladders[0].encoders, key=lambda encoder: encoder != ladder.anchor)
    metric_names = [metric.name for metric in metrics]

    def summarised(class_name: str, members: list[ClipResult]) -> ClassResult:
        figures = class_figures([member.versus for member in members], anchors, metric_names)
        return ClassResult(class_name, [member.entry.name for member in members], figures)

    classes = [
        summarised(klass, [result for result in results if result.entry.klass == klass])
        for klass in test_set.classes
    ]
    first = outcomes[0]
    return SuiteResult(
        codec=name,
        candidate_id=first.candidate_id,
        code_hash=first.code_hash,
        test_set=test_set,
        qualities=list(qualities),
        metrics=list(metrics),
        anchors=anchors,
        ladder_anchor=ladder.anchor,
        clips=results,
        classes=classes,
        overall=summarised(ALL_CLASSES, results),
        seconds=time.monotonic() - started,
        warnings=warnings,
    )
