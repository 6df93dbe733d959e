"""Planner calibration: the figures against numpy on random pairs, the edge cases, and
``aicodec history --calibration`` over iteration rows written to a real SQLite store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from aicodec.errors import EvolutionError
from aicodec.evolution.calibration import (
    Prediction,
    mean_absolute_error,
    mean_signed_error,
    pearson,
    planner_calibration,
    threshold_outcomes,
)
from aicodec.store import CandidateRecord, EvolutionIteration, EvolutionRun, Store
from tests.test_cli import aicodec, assert_one_line_error


def pairs_of(predicted: np.ndarray, measured: np.ndarray) -> list[tuple[float, float]]:
    """numpy columns as (predicted, measured) float pairs."""
    return [(float(p), float(m)) for p, m in zip(predicted, measured, strict=True)]


@pytest.mark.parametrize("seed", range(5))
def test_errors_and_correlation_match_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    count = int(rng.integers(2, 40))
    predicted = rng.normal(-1.0, 2.0, count)
    measured = 0.5 * predicted + rng.normal(0.3, 1.5, count)
    pairs = pairs_of(predicted, measured)
    assert mean_absolute_error(pairs) == pytest.approx(np.mean(np.abs(predicted - measured)))
    assert mean_signed_error(pairs) == pytest.approx(np.mean(predicted - measured))
    assert pearson(pairs) == pytest.approx(np.corrcoef(predicted, measured)[0, 1])


def test_edge_cases() -> None:
    assert mean_absolute_error([(-2.0, 1.5)]) == 3.5
    assert mean_signed_error([(-2.0, 1.5)]) == -3.5
    assert pearson([(-2.0, 1.5)]) is None  # one pair: undefined
    assert pearson([]) is None
    # a constant side (the rule planner's prior, say) has no correlation, not NaN
    assert pearson([(0.1, 1.0), (0.1, -3.0), (0.1, 2.0)]) is None
    assert pearson([(1.0, 0.7), (-3.0, 0.7)]) is None
    assert pearson([(1.0, 2.0), (2.0, 4.0), (3.0, 6.0)]) == pytest.approx(1.0)
    assert pearson([(1.0, 2.0), (2.0, 0.0)]) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        mean_absolute_error([])


def test_threshold_outcomes_use_each_runs_threshold() -> None:
    def made(predicted: float, measured: float, threshold: float) -> Prediction:
        return Prediction(1, 1, "rules", predicted, measured, threshold)

    outcomes = threshold_outcomes(
        [
            made(-2.0, -1.5, 1.0),  # predicted win, measured win
            made(-2.0, -0.5, 1.0),  # predicted win, no win
            made(-1.0, -3.0, 1.0),  # exactly -threshold is no predicted win; it won anyway
            made(-2.0, -1.5, 2.0),  # under a 2 % threshold: neither
        ]
    )
    assert (outcomes.predicted_to_beat, outcomes.came_true) == (2, 1)
    assert (outcomes.predicted_not_to_beat, outcomes.beat_anyway) == (2, 1)
    assert outcomes.came_true_share == 0.5 and outcomes.beat_anyway_share == 0.5
    assert threshold_outcomes([]).came_true_share is None


# predicted, measured BD-rate vs the parent (%); None where the iteration lacks the figure
Figures = list[tuple[float | None, float | None]]
RULES: Figures = [
    (-1.0, -2.5),
    (-1.0, 0.8),
    (-1.5, -1.2),
    (-0.4, -3.0),
    (-2.5, 0.2),
    (None, -1.0),
    (-2.0, None),
]
MODEL: Figures = [(-3.0, -2.0), (-0.5, 0.4), (-2.2, -0.1), (1.0, 2.5)]
LATER: Figures = [(-4.0, -4.5), (-0.2, 0.3)]  # a second run, threshold 2 %


def write_run(store: Store, threshold: float, rows: dict[str, Figures]) -> int:
    """A finished run whose iterations carry these planners' predictions and measurements."""
    config = {"iterations": 10, "videos": [], "threshold": threshold}
    with store.session() as session:
        if session.get(CandidateRecord, 1) is None:
            session.add(CandidateRecord(code_hash="c" * 64, source="", name="c", origin="seed"))
            session.flush()
        run = EvolutionRun(
            batch=os.urandom(8).hex(),
            status="finished",
            iterations_planned=10,
            provider="mutation",
            provider_reason="test",
            seed=0,
            start_parent_id=1,
            config_json=json.dumps(config),
        )
        session.add(run)
        session.flush()
        number = 0
        for planner, stored in rows.items():
            for predicted, measured in stored:
                number += 1
                session.add(
                    EvolutionIteration(
                        run_id=run.id,
                        number=number,
                        status="done",
                        stage="end",
                        planner=planner,
                        predicted_bd_rate=predicted,
                        bd_rate_vs_parent=measured,
                        parent_id=1,
                    )
                )
        return run.id


def expected(stored: Figures, threshold: float) -> dict[str, object]:
    """What the CLI should report for these figures, computed with numpy."""
    both = np.array([(p, m) for p, m in stored if p is not None and m is not None])
    predicted, measured = both[:, 0], both[:, 1]
    wins = predicted < -threshold
    return {
        "pairs": len(both),
        "mean_absolute_error": pytest.approx(np.mean(np.abs(predicted - measured))),
        "mean_signed_error": pytest.approx(np.mean(predicted - measured)),
        "correlation": pytest.approx(np.corrcoef(predicted, measured)[0, 1]),
        "predicted_to_beat": int(wins.sum()),
        "came_true": int((measured[wins] < -threshold).sum()),
        "predicted_not_to_beat": int((~wins).sum()),
        "beat_anyway": int((measured[~wins] < -threshold).sum()),
    }


@pytest.fixture(scope="module")
def calibration_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[int]]:
    """A store with three runs: one without any pair, then rules and model planners (1 %),
    then rules alone (2 %)."""
    path = tmp_path_factory.mktemp("calibration") / "store.db"
    store = Store(str(path))
    blank = write_run(store, 1.0, {"rules": [(None, -1.0), (-1.0, None)]})
    first = write_run(store, 1.0, {"rules": RULES, "model": MODEL})
    second = write_run(store, 2.0, {"rules": LATER})
    store.close()
    return str(path), [blank, first, second]


def figures(entry: dict[str, object], keys: dict[str, object]) -> dict[str, object]:
    """The entry's values under the keys of ``keys``."""
    return {key: entry[key] for key in keys}


def test_history_calibration_json_matches_numpy(calibration_db: tuple[str, list[int]]) -> None:
    db, (_, first, _) = calibration_db
    result = aicodec("history", "--calibration", "--json", "--run", str(first), "--db", db)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["runs"] == [{"run": first, "threshold": 1.0, "pairs": 9}]
    planners = {entry["planner"]: entry for entry in data["planners"]}
    assert sorted(planners) == ["model", "rules"]
    for name, stored in (("rules", RULES), ("model", MODEL)):
        reference = expected(stored, 1.0)
        assert figures(planners[name], reference) == reference
    assert planners["rules"]["came_true_share"] == pytest.approx(1 / 2)


def test_last_run_by_default_and_every_run_pooled(calibration_db: tuple[str, list[int]]) -> None:
    db, (blank, first, second) = calibration_db
    store = Store(db)
    try:
        last = planner_calibration(store)
        pooled = planner_calibration(store, all_runs=True)
    finally:
        store.close()
    assert [(run.run_id, run.threshold, run.pairs) for run in last.runs] == [(second, 2.0, 2)]
    assert [(run.run_id, run.pairs) for run in pooled.runs] == [(blank, 0), (first, 9), (second, 2)]
    planners = {entry.planner: entry.to_dict() for entry in pooled.planners}
    # each pair is judged by its own run's threshold; LATER's wins are the same under 1 and 2 %
    rules = expected(RULES + LATER, 1.0)
    assert figures(planners["rules"], rules) == rules
    assert planners["model"]["pairs"] == len(MODEL)


def test_history_calibration_table(calibration_db: tuple[str, list[int]]) -> None:
    db, (blank, first, second) = calibration_db
    result = aicodec("history", "--calibration", "--all-runs", "--db", db)
    assert result.returncode == 0, result.stderr
    assert f"evolve runs {blank} (0 pairs, threshold 1 %), {first} (9 pairs" in result.stdout
    assert f"{second} (2 pairs, threshold 2 %)" in result.stdout
    assert "planner: model" in result.stdout and "planner: rules" in result.stdout
    assert "mean absolute error" in result.stdout and "2/3 (67 %)" in result.stdout


def test_calibration_without_runs_or_pairs(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "empty.db"))
    try:
        with pytest.raises(EvolutionError, match="the store holds no evolve run yet"):
            planner_calibration(store, all_runs=True)
        blank = write_run(store, 1.0, {"model": [(None, 0.5)]})
        with pytest.raises(EvolutionError, match=f"no evolve run {blank + 1} in the store"):
            planner_calibration(store, blank + 1)
        with pytest.raises(EvolutionError, match="no iteration of the 1 evolve run in the store"):
            planner_calibration(store, all_runs=True)
    finally:
        store.close()


def test_history_calibration_errors(calibration_db: tuple[str, list[int]]) -> None:
    db, (blank, first, _) = calibration_db
    # (an empty store and an unknown run id: the library test above; each CLI run costs 2 s)
    result = aicodec("history", "--calibration", "--json", "--run", str(blank), "--db", db)
    assert_one_line_error(result, f"no iteration of evolve run {blank} has both a predicted")
    assert result.returncode == EvolutionError.exit_code  # as plain history's errors
    assert_one_line_error(
        aicodec("history", "--calibration", "--all-runs", "--run", str(first), "--db", db),
        "give it or --run, not both",
    )
    assert_one_line_error(aicodec("history", "--all-runs", "--db", db), "goes with --calibration")
