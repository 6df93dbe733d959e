"""The numbers of a suite table: BD-rates per metric and anchor, time ratios, class means.

Per clip: the codec's BD-rate against each anchor on each metric (percent; below 0 the
codec needs fewer bits), and its encode and decode time relative to the anchor's (the
ratio of the mean seconds per rate point; below 1 the codec is faster). Per class and
over the set, as the JVET and AOM common test conditions report them: the arithmetic mean
of the clips' BD-rates (undefined when one clip's is) and the geometric mean of their time
ratios.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from aicodec.ladder import EncoderCurve, LadderResult
from aicodec.scoring.candidate import ScoredPoint, bd_rates_against
from aicodec.scoring.rate_metrics import RateMetric
from aicodec.settings import Settings


@dataclass
class AnchorFigures:
    """The codec against one anchor: BD-rate per metric name (percent, None where
    undefined) and its encode and decode times as ratios of the anchor's (None unknown)."""

    bd_rate: dict[str, float | None] = field(default_factory=dict)
    encode_time: float | None = None
    decode_time: float | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready figures."""
        return {
            "bd_rate": self.bd_rate,
            "encode_time": self.encode_time,
            "decode_time": self.decode_time,
        }


def mean_seconds(seconds: Iterable[float | None]) -> float | None:
    """Mean seconds per rate point; None when any point's time is unknown or none is given."""
    values = list(seconds)
    if not values or any(value is None for value in values):
        return None
    return math.fsum(value for value in values if value is not None) / len(values)


def time_ratio(test_seconds: float | None, anchor_seconds: float | None) -> float | None:
    """Test time over anchor time (unitless; below 1 the test is faster); None if unknown."""
    if test_seconds is None or anchor_seconds is None or anchor_seconds <= 0:
        return None
    return test_seconds / anchor_seconds


def mean_or_none(values: Sequence[float | None]) -> float | None:
    """Arithmetic mean (a class's BD-rate, percent); None when any value is undefined."""
    if not values or any(value is None for value in values):
        return None
    return math.fsum(value for value in values if value is not None) / len(values)


def geometric_mean(values: Sequence[float | None]) -> float | None:
    """Geometric mean of positive ratios (a class's time ratio); None when any is unknown."""
    if not values or any(value is None or value <= 0 for value in values):
        return None
    return math.exp(math.fsum(math.log(value) for value in values if value) / len(values))


def versus_anchors(
    baselines: LadderResult,
    points: Sequence[ScoredPoint],
    metrics: Sequence[RateMetric],
    settings: Settings,
) -> tuple[dict[str, AnchorFigures], list[str]]:
    """The codec's figures against every encoder of ``baselines`` on one clip, and the
    warnings of undefined or partly covered BD-rates."""
    figures = {name: AnchorFigures() for name in baselines.encoders}
    warnings: list[str] = []
    for metric in metrics:
        rates, notes = bd_rates_against(baselines, points, settings, metric)
        warnings += notes
        for name, value in rates.items():
            figures[name].bd_rate[metric.name] = value
    encode = mean_seconds(point.encode_seconds for point in points)
    decode = mean_seconds(point.decode_seconds for point in points)
    for name, curve in baselines.encoders.items():
        figures[name].encode_time = time_ratio(encode, _anchor_seconds(curve, "encode"))
        figures[name].decode_time = time_ratio(decode, _anchor_seconds(curve, "decode"))
    return figures, warnings


def _anchor_seconds(curve: EncoderCurve, role: str) -> float | None:
    """An encoder's mean encode or decode seconds per rate point on a clip."""
    return mean_seconds(getattr(point, f"{role}_seconds") for point in curve.points)


def class_figures(
    members: Sequence[dict[str, AnchorFigures]], anchors: Sequence[str], metrics: Sequence[str]
) -> dict[str, AnchorFigures]:
    """A class's figures from its clips': mean BD-rates, geometric-mean time ratios."""
    averaged = {}
    for anchor in anchors:
        clips = [member[anchor] for member in members]
        averaged[anchor] = AnchorFigures(
            bd_rate={
                metric: mean_or_none([clip.bd_rate.get(metric) for clip in clips])
                for metric in metrics
            },
            encode_time=geometric_mean([clip.encode_time for clip in clips]),
            decode_time=geometric_mean([clip.decode_time for clip in clips]),
        )
    return averaged
