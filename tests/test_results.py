"""Stored results: one fitness, one best codec, found whatever order the qualities had."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aicodec.adoption import decide
from aicodec.candidates.records import record_candidate
from aicodec.clips import Clip
from aicodec.clips.records import record_clip
from aicodec.evolution.config import EvolveConfig
from aicodec.scoring.candidate import parse_qualities
from aicodec.settings import Settings
from aicodec.store import EvolutionIteration, EvolutionRun, RunRecord, ScoreRecord, Store
from aicodec.store.queries import runs
from aicodec.store.queries.points import (
    anchor_name,
    best_candidate,
    candidate_points,
    fitness,
    ladder_bd_rates,
    measured_points,
    normal_qualities,
    quality_key,
    stored_points,
)

SEED = Path(__file__).resolve().parents[1] / "baselines" / "seeds" / "intra_dct.py"
LEVELS = [20, 40, 60, 80]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    found = Store(f"sqlite:///{tmp_path / 'results.db'}")
    yield found
    found.close()


def codec(store: Store, number: int) -> int:
    """A stored candidate (the intra seed with a distinct comment)."""
    return record_candidate(
        store, f"{SEED.read_text()}\n# variant {number}\n", f"c{number}.py", origin="manual"
    )


def add_score(store: Store, candidate: int, clip: int, key: str, x264: float | None) -> None:
    """A score row as an older lab wrote it: the qualities in the order they were typed."""
    rates = json.dumps({"x264-medium": x264, "x265-medium": 1.0})
    with store.session() as session:
        session.add(
            ScoreRecord(candidate_id=candidate, clip_id=clip, qualities=key, bd_rate_json=rates)
        )


def add_runs(store: Store, candidate: int, clip: int, levels: list[int]) -> None:
    """Deterministic successful runs, one per quality, rate rising with quality."""
    with store.session() as session:
        for level in levels:
            session.add(
                RunRecord(
                    candidate_id=candidate,
                    clip_id=clip,
                    quality=level,
                    status="ok",
                    isolation="t",
                    bytes=100 * level,
                    kbps=10.0 * level,
                    psnr_y=20 + level / 5,
                    psnr_u=40.0,
                    psnr_v=40.0,
                    psnr_yuv=30 + level / 5,
                    ssim_y=0.9,
                    decode_seconds=0.1,
                    deterministic=True,
                )
            )


def test_qualities_have_one_normal_form() -> None:
    assert normal_qualities([80, 20, 60, 40, 20]) == LEVELS
    assert quality_key([80, 60, 40, 20]) == quality_key(LEVELS) == "20,40,60,80"
    assert parse_qualities("80, 20,60,40,80") == LEVELS
    assert (
        EvolveConfig.from_settings(
            Settings(), iterations=1, videos=[], qualities=[80, 40, 60, 20]
        ).qualities
        == LEVELS
    )


def test_scores_stored_under_unsorted_qualities_are_found(store: Store, small_clip: Clip) -> None:
    clip = record_clip(store, small_clip)
    mine = codec(store, 1)
    add_score(store, mine, clip, "80,60,40,20", -12.5)
    with store.session() as session:
        for order in ([20, 40, 60, 80], [60, 80, 20, 40]):
            assert ladder_bd_rates(session, mine, clip, order) == {
                "x264-medium": -12.5,
                "x265-medium": 1.0,
            }
        assert ladder_bd_rates(session, mine, clip, [30, 50, 70, 90]) is None
    assert fitness(store, mine, [clip], [40, 80, 60, 20]) == -12.5
    assert best_candidate(store, [20, 40, 60, 80], [clip]) == mine


def test_adoption_finds_scores_and_runs_stored_under_unsorted_qualities(
    store: Store, small_clip: Clip, settings: Settings
) -> None:
    clip = record_clip(store, small_clip)
    mine = codec(store, 1)  # no ancestor, nothing adopted: judged against x264 from its scores
    add_runs(store, mine, clip, [80, 60, 40, 20])
    add_score(store, mine, clip, "80,60,40,20", -3.0)
    with store.session() as session:
        points, problem = candidate_points(session, mine, clip, [80, 40, 60, 20])
    assert problem is None and [point["quality"] for point in points] == LEVELS
    decision = decide(store, settings, mine, [clip], [80, 60, 40, 20])
    assert decision.adopted, decision.reason
    assert decision.bd_rate_vs_best == -3.0 and decision.qualities == LEVELS


def test_fitness_and_the_best_codec_use_the_latest_score_at_the_same_qualities(
    store: Store, small_clip: Clip
) -> None:
    clip = record_clip(store, small_clip)
    first, second, other = codec(store, 1), codec(store, 2), codec(store, 3)
    add_score(store, first, clip, "20,40,60,80", -30.0)
    add_score(store, second, clip, "20,40,60,80", -10.0)
    add_score(store, other, clip, "10,30,50,70", -90.0)  # another quality set: not comparable
    assert best_candidate(store, LEVELS, [clip]) == first
    add_score(store, first, clip, "20,40,60,80", 5.0)  # scored again: the latest counts
    assert fitness(store, first, [clip], LEVELS) == 5.0
    assert best_candidate(store, LEVELS, [clip]) == second
    assert best_candidate(store, LEVELS, [clip], hidden=[second]) == first
    assert best_candidate(store, [10, 30, 50, 70]) == other


def test_fitness_needs_a_defined_score_on_every_clip(store: Store, small_clip: Clip) -> None:
    clip = record_clip(store, small_clip)
    other = record_clip(
        store,
        Clip(
            small_clip.frames.window(0, 4),
            "short",
            "short",
            0,
            small_clip.frames.window(0, 4).content_hash(),
        ),
    )
    mine, rival = codec(store, 1), codec(store, 2)
    add_score(store, mine, clip, "20,40,60,80", -8.0)
    assert fitness(store, mine, [clip, other], LEVELS) is None  # no score on the second clip
    add_score(store, mine, other, "20,40,60,80", None)  # scored, BD-rate undefined there
    assert fitness(store, mine, [clip, other], LEVELS) is None
    add_score(store, rival, clip, "20,40,60,80", -1.0)
    add_score(store, rival, other, "20,40,60,80", -3.0)
    assert fitness(store, rival, [clip, other], LEVELS) == -2.0
    assert best_candidate(store, LEVELS, [clip, other]) == rival
    assert best_candidate(store, LEVELS, [clip]) == mine


def add_iteration(store: Store, candidate: int, parent: int, yuv: float | None) -> None:
    """An evolve run of one scored iteration that made ``candidate`` from ``parent``, with
    its BD-rate vs the parent on PSNR-YUV (percent)."""
    with store.session() as session:
        run = EvolutionRun(
            batch=os.urandom(8).hex(),
            status="finished",
            iterations_planned=1,
            provider="mutation",
            provider_reason="test",
            seed=0,
            start_parent_id=parent,
            config_json="{}",
        )
        session.add(run)
        session.flush()
        session.add(
            EvolutionIteration(
                run_id=run.id,
                number=1,
                status="scored",
                stage="end",
                parent_id=parent,
                candidate_id=candidate,
                bd_rate_yuv_vs_parent=yuv,
            )
        )


def test_the_typed_points_are_the_stored_runs_and_the_dicts_theirs(
    store: Store, small_clip: Clip
) -> None:
    clip = record_clip(store, small_clip)
    mine = codec(store, 1)
    add_runs(store, mine, clip, LEVELS)
    add_runs(store, mine, clip, [40])  # measured again: the newest run is the point
    with store.session() as session:
        points, problem = stored_points(session, mine, clip, [80, 20, 60, 40])
        plain, same_problem = candidate_points(session, mine, clip, LEVELS)
        measured = measured_points(session, mine)
        rows = session.query(RunRecord).order_by(RunRecord.id).all()
    assert problem is None and same_problem is None
    assert [point.quality for point in points] == LEVELS
    assert [point.rd_dict() for point in points] == plain
    newest = {row.quality: row for row in rows}
    for point in points:
        row = newest[point.quality]
        assert (point.kbps, point.psnr_y, point.psnr_yuv, point.ssim_y, point.bytes) == (
            row.kbps,
            row.psnr_y,
            row.psnr_yuv,
            row.ssim_y,
            row.bytes,
        )
    assert [(clip_id, point.quality) for clip_id, point in measured] == [
        (clip, row.quality) for row in rows
    ]
    with store.session() as session:
        points, problem = stored_points(session, mine, clip, [20, 30])
    assert [point.quality for point in points] == [20]
    assert problem == f"has no successful stored run at quality 30 on clip {clip}"


def test_fitness_is_measured_against_the_anchor_the_ladder_file_names(
    store: Store, small_clip: Clip, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = record_clip(store, small_clip)
    mine = codec(store, 1)
    add_score(store, mine, clip, "20,40,60,80", -3.0)  # vs x264-medium; x265-medium at 1.0
    assert anchor_name() == "x264-medium"
    assert fitness(store, mine, [clip], LEVELS) == -3.0
    ladder = tmp_path / "ladder.toml"
    shipped = Settings().ladder_file.read_text()
    ladder.write_text(shipped.replace('anchor = "x264-medium"', 'anchor = "x265-medium"', 1))
    monkeypatch.setenv("AICODEC_LADDER_FILE", str(ladder))
    assert anchor_name() == "x265-medium"
    assert fitness(store, mine, [clip], LEVELS) == 1.0


def test_the_stores_best_and_a_runs_best_follow_one_psnr_yuv_rule(
    store: Store, small_clip: Clip
) -> None:
    clip = record_clip(store, small_clip)
    seed, chroma_loser, fair = (codec(store, n) for n in range(1, 4))
    add_score(store, seed, clip, "20,40,60,80", -1.0)
    add_score(store, chroma_loser, clip, "20,40,60,80", -9.0)
    add_score(store, fair, clip, "20,40,60,80", -5.0)
    add_iteration(store, chroma_loser, seed, 0.4)  # a luma gain paid for with chroma
    add_iteration(store, fair, seed, -0.1)
    assert best_candidate(store, LEVELS, [clip]) == fair  # the lowest BD-rate trades chroma
    assert best_candidate(store, LEVELS, [clip], hidden=[fair]) == seed  # no parent: competes
    history = {entry["candidate"]: entry for run in (1, 2) for entry in runs.history(store, run)}
    assert not runs.may_be_best(history[chroma_loser]) and runs.may_be_best(history[fair])
    for yuv, eligible in ((0.4, False), (None, False), (0.0, True), (-0.1, True)):
        entry = {"status": "scored", "bd_rate_yuv_vs_parent": yuv}
        assert runs.may_be_best(entry) is eligible
    assert not runs.may_be_best({"status": "failed", "bd_rate_yuv_vs_parent": -1.0})


@pytest.mark.parametrize(
    "module",
    [
        "report/data.py",
        "generation/material.py",
        "evolution/calibration.py",
        "generation/generate.py",
    ],
)
def test_the_report_and_the_prompts_read_results_only_through_queries(module: str) -> None:
    source = (Path(__file__).resolve().parents[1] / "src" / "aicodec" / module).read_text()
    for read in ("select(", "session.get(", "session.scalar", "session.execute(", "session.query("):
        assert read not in source, f"{module} reads the store itself ({read})"
