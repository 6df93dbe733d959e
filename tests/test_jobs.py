"""Parallel scoring on the job pool: identical results for any job count, clips and
qualities at once, the first failure cancelling the rest, limits relative to a parent."""

from __future__ import annotations

import itertools
import json
import sqlite3
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from aicodec.clips import Clip, load_clip
from aicodec.errors import SandboxError
from aicodec.sandbox.execute import CANCELLED, run_candidate, run_candidate_on_clips
from aicodec.sandbox.runner import wall_limit
from aicodec.scoring.candidate import measure_candidate
from aicodec.settings import Settings
from aicodec.store import Store
from tests.test_cli import aicodec, assert_one_line_error
from tests.test_sandbox import TIMED_CODEC, ZLIB_DECODE

SEED = Path(__file__).parents[1] / "baselines" / "seeds" / "motion_dct.py"
TIMINGS = ("encode_seconds", "encode_fps", "decode_seconds", "decode_fps")

PLAIN = (
    """
import struct
import zlib

import numpy as np


def encode(frames, quality):
    head = struct.pack("<HHHH", frames.count, frames.height, frames.width, 8)
    return head + zlib.compress(frames.y.tobytes() + frames.u.tobytes() + frames.v.tobytes())
"""
    + ZLIB_DECODE
)

# quality 20 fails at once; every other quality hangs until it is killed
FAILS_FAST_THEN_HANGS = PLAIN.replace(
    "    head = ",
    "    if quality == 20:\n        raise ValueError('quality 20 is broken')\n"
    "    while quality:\n        quality += 1\n    head = ",
)
HANGS = PLAIN.replace("    head = ", "    while quality:\n        quality += 1\n    head = ")


@pytest.fixture(scope="module")
def clips() -> list[Clip]:
    whole = load_clip(None, Settings(), count=4)
    other = load_clip(None, Settings(), start=4, count=3)
    return [whole, other]


def scored(jobs: int, tmp_path: Path) -> dict[str, object]:
    result = aicodec(
        "score",
        str(SEED),
        "--frames",
        "5",
        "--encoders",
        "x264",
        "--jobs",
        str(jobs),
        "--db",
        str(tmp_path / f"jobs{jobs}.db"),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for point in data["points"]:
        for name in TIMINGS:
            point.pop(name)
    return data


@pytest.mark.slow
def test_scores_are_identical_for_one_job_and_several(tmp_path: Path) -> None:
    one, two = scored(1, tmp_path), scored(2, tmp_path)
    assert one["points"] == two["points"] and one["bd_rate_vs"] == two["bd_rate_vs"]
    hashes = []
    for jobs in (1, 2):
        with sqlite3.connect(tmp_path / f"jobs{jobs}.db") as connection:
            hashes.append(
                connection.execute(
                    "SELECT quality, bitstream_sha256, decoded_sha256 FROM candidate_runs "
                    "ORDER BY quality"
                ).fetchall()
            )
            baseline = connection.execute(
                "SELECT rate_value, bytes, psnr_y FROM baseline_encodes ORDER BY rate_value"
            ).fetchall()
            hashes.append(baseline)
    assert hashes[0] == hashes[2] and hashes[1] == hashes[3] and len(hashes[0]) == 4


def test_clips_and_qualities_share_one_pool(clips: list[Clip]) -> None:
    runs = run_candidate_on_clips(TIMED_CODEC, clips, [30, 60], Settings(jobs=4))
    assert [run.clip for run in runs] == clips
    spans = []
    for run in runs:
        assert run.ok, run.first_error()
        for point in run.points:
            quality, started, ended = struct.unpack_from("<HHHHHdd", point.bitstream or b"")[4:]
            assert quality == point.quality
            spans.append((started, ended))
            assert np.array_equal(point.decoded.y, run.clip.frames.y)
    spans.sort()
    overlapping = sum(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))
    assert overlapping == 3  # four one-second encodes on four workers: all at once


def test_the_first_failure_cancels_every_other_job(clips: list[Clip]) -> None:
    started = time.monotonic()
    runs = run_candidate_on_clips(
        FAILS_FAST_THEN_HANGS, clips, [20, 40, 60, 80], Settings(jobs=3, sandbox_wall_s=120)
    )
    assert time.monotonic() - started < 30  # not the two minutes a hanging encode asks for
    failed = runs[0].points[0]
    assert failed.error is not None and "quality 20 is broken" in failed.error
    others = [point for run in runs for point in run.points if point is not failed]
    assert all(point.failed_stage == CANCELLED for point in others)
    assert runs[0].first_error().startswith("quality 20: encode: encode error")
    assert runs[1].points[0].failed_stage == CANCELLED  # clip 2 at quality 20 never ran
    assert f"{clips[0].name} quality 20 failed first" in (runs[1].points[0].error or "")


def test_a_hung_candidate_costs_a_multiple_of_its_parents_time(
    clips: list[Clip], tmp_path: Path
) -> None:
    settings = Settings(jobs=2, sandbox_time_floor_s=3, sandbox_time_multiple=2)
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    parent = measure_candidate(PLAIN, "parent", clips[:1], store, settings, [30, 60])[0]
    started = time.monotonic()
    with pytest.raises(SandboxError) as caught:
        measure_candidate(
            HANGS, "child", clips[:1], store, settings, [30, 60], reference_id=parent.candidate_id
        )
    assert time.monotonic() - started < 15
    assert "timeout: no result within the 3 s wall-clock limit" in str(caught.value)
    with store.session() as session:
        stages = session.execute(
            __import__("sqlalchemy").text(
                "SELECT quality, status, stage FROM candidate_runs WHERE candidate_id != :p "
                "ORDER BY id"
            ),
            {"p": parent.candidate_id},
        ).all()
    assert {row.status for row in stages} == {"failed"} and len(stages) == 2
    store.close()


def test_wall_limits_are_relative_to_a_reference_within_the_floor_and_the_cap() -> None:
    settings = Settings(sandbox_wall_s=100, sandbox_time_floor_s=5, sandbox_time_multiple=4)
    assert wall_limit(settings, None) == 100  # nothing known: the absolute cap
    assert wall_limit(settings, 0.1) == 5  # the floor
    assert wall_limit(settings, 3.0) == 12
    assert wall_limit(settings, 60.0) == 100  # the cap


def test_a_cancelled_run_stores_the_real_failure_first(clips: list[Clip], tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    with pytest.raises(SandboxError) as caught:
        measure_candidate(
            FAILS_FAST_THEN_HANGS,
            "broken",
            clips,
            store,
            Settings(jobs=2, sandbox_wall_s=120),
            [20, 40, 60, 80],
        )
    assert "quality 20: encode: encode error: ValueError: quality 20 is broken" in str(caught.value)
    with store.session() as session:
        stages = (
            session.execute(__import__("sqlalchemy").text("SELECT stage FROM candidate_runs"))
            .scalars()
            .all()
        )
    assert sorted(stages).count(CANCELLED) == 7 and "encode" in stages
    store.close()


def test_one_clip_run_keeps_the_quality_order(clips: list[Clip]) -> None:
    run = run_candidate(TIMED_CODEC, clips[1], [80, 20], Settings(jobs=1))
    assert [point.quality for point in run.points] == [80, 20] and run.ok


def test_a_negative_job_count_is_one_line() -> None:
    for command in ("run", "score"):
        result = aicodec(command, str(SEED), "--jobs", "-1")
        assert_one_line_error(result, "setting jobs: Input should be greater than or equal to 0")
