"""How well the planners predict: predicted against measured BD-rate of a child vs its parent.

Every evolve iteration stores its planner's prediction (``predicted_bd_rate``: the coming
codec's BD-rate against its parent, percent) and, once scored, the measured value
(``bd_rate_vs_parent``). This module takes those pairs (``store.queries.runs`` reads them)
and sums them up per planner: the mean absolute and signed errors (percentage points), their
Pearson correlation, and how often "predicted to beat the adoption threshold" came true.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from aicodec.errors import EvolutionError
from aicodec.store import Store
from aicodec.store.queries.runs import run_predictions

Pair = tuple[float, float]  # (predicted, measured) BD-rate vs the parent, percent


@dataclass(frozen=True)
class Prediction:
    """One iteration's prediction and measurement (BD-rate vs its parent, percent)."""

    run_id: int
    iteration: int
    planner: str
    predicted: float
    measured: float
    threshold: float  # the run's adoption threshold, percent (a win is below -threshold)


@dataclass(frozen=True)
class ThresholdOutcomes:
    """Predicted wins (below -threshold) against measured wins, as counts."""

    predicted_to_beat: int
    came_true: int
    predicted_not_to_beat: int
    beat_anyway: int

    @property
    def came_true_share(self) -> float | None:
        """The share of predicted wins that were measured wins, 0..1; None without any."""
        return self.came_true / self.predicted_to_beat if self.predicted_to_beat else None

    @property
    def beat_anyway_share(self) -> float | None:
        """The share of predicted non-wins that were measured wins, 0..1; None without any."""
        if not self.predicted_not_to_beat:
            return None
        return self.beat_anyway / self.predicted_not_to_beat


@dataclass(frozen=True)
class PlannerCalibration:
    """One planner's calibration over its prediction/measurement pairs."""

    planner: str
    pairs: int
    mean_absolute_error: float  # percentage points
    mean_signed_error: float  # predicted minus measured, percentage points (> 0: too gloomy)
    correlation: float | None  # Pearson; None with fewer than 2 pairs or a constant side
    outcomes: ThresholdOutcomes

    def to_dict(self) -> dict[str, object]:
        """The figures as plain JSON values (never NaN)."""
        outcomes = self.outcomes
        return {
            "planner": self.planner,
            "pairs": self.pairs,
            "mean_absolute_error": self.mean_absolute_error,
            "mean_signed_error": self.mean_signed_error,
            "correlation": self.correlation,
            "predicted_to_beat": outcomes.predicted_to_beat,
            "came_true": outcomes.came_true,
            "came_true_share": outcomes.came_true_share,
            "predicted_not_to_beat": outcomes.predicted_not_to_beat,
            "beat_anyway": outcomes.beat_anyway,
            "beat_anyway_share": outcomes.beat_anyway_share,
        }


@dataclass(frozen=True)
class RunPooled:
    """A run whose iterations were read: its id, adoption threshold (percent) and pairs."""

    run_id: int
    threshold: float
    pairs: int


@dataclass(frozen=True)
class Calibration:
    """The calibration of every planner over the runs read."""

    runs: list[RunPooled]
    planners: list[PlannerCalibration]

    def to_dict(self) -> dict[str, object]:
        """The calibration as plain JSON values."""
        return {
            "runs": [
                {"run": run.run_id, "threshold": run.threshold, "pairs": run.pairs}
                for run in self.runs
            ],
            "planners": [planner.to_dict() for planner in self.planners],
        }


def _require_pairs(pairs: Sequence[Pair]) -> None:
    if not pairs:
        raise ValueError("no (predicted, measured) pairs")


def mean_absolute_error(pairs: Sequence[Pair]) -> float:
    """Mean of |predicted - measured|, percentage points; at least one pair."""
    _require_pairs(pairs)
    return math.fsum(abs(predicted - measured) for predicted, measured in pairs) / len(pairs)


def mean_signed_error(pairs: Sequence[Pair]) -> float:
    """Mean of predicted - measured, percentage points (the bias); at least one pair."""
    _require_pairs(pairs)
    return math.fsum(predicted - measured for predicted, measured in pairs) / len(pairs)


def pearson(pairs: Sequence[Pair]) -> float | None:
    """Pearson correlation of predicted and measured, -1..1; None with fewer than 2 pairs
    or when either side is constant (the correlation is undefined there)."""
    if len(pairs) < 2:
        return None
    xs = [predicted for predicted, _ in pairs]
    ys = [measured for _, measured in pairs]
    if min(xs) == max(xs) or min(ys) == max(ys):
        return None
    x_mean, y_mean = math.fsum(xs) / len(xs), math.fsum(ys) / len(ys)
    dx = [x - x_mean for x in xs]
    dy = [y - y_mean for y in ys]
    sxy = math.fsum(a * b for a, b in zip(dx, dy, strict=True))
    sxx, syy = math.fsum(a * a for a in dx), math.fsum(b * b for b in dy)
    if sxx == 0.0 or syy == 0.0:
        return None
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def threshold_outcomes(predictions: Sequence[Prediction]) -> ThresholdOutcomes:
    """Count predicted wins (predicted < -threshold) and how many were measured wins, and
    predicted non-wins that were measured wins, each against its own run's threshold."""
    predicted_wins = [p for p in predictions if p.predicted < -p.threshold]
    others = [p for p in predictions if not p.predicted < -p.threshold]
    return ThresholdOutcomes(
        predicted_to_beat=len(predicted_wins),
        came_true=sum(1 for p in predicted_wins if p.measured < -p.threshold),
        predicted_not_to_beat=len(others),
        beat_anyway=sum(1 for p in others if p.measured < -p.threshold),
    )


def calibrate(planner: str, predictions: Sequence[Prediction]) -> PlannerCalibration:
    """One planner's figures over its predictions (at least one)."""
    pairs = [(p.predicted, p.measured) for p in predictions]
    return PlannerCalibration(
        planner=planner,
        pairs=len(pairs),
        mean_absolute_error=mean_absolute_error(pairs),
        mean_signed_error=mean_signed_error(pairs),
        correlation=pearson(pairs),
        outcomes=threshold_outcomes(predictions),
    )


def _threshold(run_id: int, config_json: str) -> float:
    """A run's adoption threshold, percent, from its stored config."""
    try:
        value = json.loads(config_json).get("threshold")
    except (ValueError, AttributeError):
        value = None
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise EvolutionError(f"evolve run {run_id} stores no readable adoption threshold")
    return float(value)


def stored_predictions(
    store: Store, run_id: int | None = None, *, all_runs: bool = False
) -> tuple[list[RunPooled], list[Prediction]]:
    """The runs read (the last run, run ``run_id``, or every run) and their iterations with
    both a prediction and a finite measurement, in run and iteration order."""
    pooled, predictions = [], []
    for run in run_predictions(store, run_id, all_runs=all_runs):
        threshold = _threshold(run.run_id, run.config_json)
        found = [
            Prediction(run.run_id, number, planner or "unknown", predicted, measured, threshold)
            for number, planner, predicted, measured in run.rows
            if math.isfinite(predicted) and math.isfinite(measured)
        ]
        pooled.append(RunPooled(run.run_id, threshold, len(found)))
        predictions += found
    return pooled, predictions


def planner_calibration(
    store: Store, run_id: int | None = None, *, all_runs: bool = False
) -> Calibration:
    """Each planner's calibration over the last run, run ``run_id`` or every run; an
    EvolutionError when there is no run or no iteration with both figures."""
    runs, predictions = stored_predictions(store, run_id, all_runs=all_runs)
    return calibration_of(runs, predictions, all_runs=all_runs)


def calibration_of(
    runs: Sequence[RunPooled], predictions: Sequence[Prediction], *, all_runs: bool = False
) -> Calibration:
    """Each planner's calibration over predictions ``stored_predictions`` read; an
    EvolutionError when there is none."""
    if not predictions:
        count = f"{len(runs)} evolve run{'s' if len(runs) > 1 else ''}"
        where = f"the {count} in the store" if all_runs else f"evolve run {runs[0].run_id}"
        raise EvolutionError(
            f"no iteration of {where} has both a predicted and a measured BD-rate vs its "
            "parent; nothing to calibrate"
        )
    by_planner: dict[str, list[Prediction]] = {}
    for prediction in predictions:
        by_planner.setdefault(prediction.planner, []).append(prediction)
    planners = [calibrate(name, found) for name, found in sorted(by_planner.items())]
    return Calibration(list(runs), planners)
