"""Wall-clock limits of a job without a parent: derived from the clip (the floor plus seconds
per megapixel-frame, at most the cap), so a lone ``aicodec score`` of a codec that hangs in
encode or in decode fails within a minute on a small clip, while an honest seed fits with
room to spare. Real CLI processes, real sandbox children."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from aicodec.sandbox.runner import wall_limit
from aicodec.settings import Settings
from tests.test_cli import assert_one_line_error
from tests.test_jobs import HANGS, PLAIN

ROOT = Path(__file__).resolve().parents[1]
HYBRID = ROOT / "baselines" / "seeds" / "hybrid.py"
LONE_DEADLINE_S = 60.0  # a lone score of a hung codec on 4 frames of 320x180 ends before this
HANGS_IN_DECODE = PLAIN.replace(
    "def decode(bitstream):\n",
    "def decode(bitstream):\n    spin = 1\n    while spin:\n        spin += 1\n",
)


def test_a_job_without_a_reference_gets_a_limit_from_the_clip() -> None:
    settings = Settings(
        sandbox_wall_s=100,
        sandbox_time_floor_s=5,
        sandbox_time_multiple=4,
        sandbox_seconds_per_megapixel_frame=10,
    )
    assert wall_limit(settings, None, 4, 500, 500) == 5 + 10 * 4 * 0.25  # floor + per Mpf
    assert wall_limit(settings, None, 100, 1000, 1000) == 100  # at most the cap
    assert wall_limit(settings, 3.0, 4, 500, 500) == 12  # a reference time comes first
    assert wall_limit(settings, None) == 100  # nothing known: the cap


def test_the_per_megapixel_frame_setting_comes_from_the_environment(tmp_path: Path) -> None:
    script = (
        "from aicodec.settings import Settings; "
        "print(Settings().sandbox_seconds_per_megapixel_frame)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"AICODEC_SANDBOX_SECONDS_PER_MEGAPIXEL_FRAME": "12.5", "PATH": "/usr/bin:/bin"},
    )
    assert result.stdout.strip() == "12.5"


def _score(
    codec: Path, clip: Path, db: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], float]:
    """``aicodec score`` of ``codec`` alone (default jobs; limits from ``env`` over the
    defaults): result and seconds."""
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "aicodec",
            "score",
            str(codec),
            "--video",
            str(clip),
            "--encoders",
            "x264",
            "--db",
            str(db),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **(env or {})},
    )
    return result, time.monotonic() - started


@pytest.mark.slow
def test_a_lone_score_of_a_codec_that_hangs_fails_within_a_minute(
    tmp_path: Path, clip_320x180: Path
) -> None:
    default = wall_limit(Settings(), None, 4, 320, 180)
    assert default < LONE_DEADLINE_S - 10  # room for the lab's start and the children's
    # the hangs run under the same rule (the floor plus seconds per megapixel-frame) with
    # smaller settings, so the test waits seconds, not the default's half a minute; each must
    # end within its limit plus the room the default leaves below the minute
    env = {
        "AICODEC_SANDBOX_TIME_FLOOR_S": "3",
        "AICODEC_SANDBOX_SECONDS_PER_MEGAPIXEL_FRAME": "20",
    }
    short = Settings(sandbox_time_floor_s=3, sandbox_seconds_per_megapixel_frame=20)
    limit = wall_limit(short, None, 4, 320, 180)
    assert limit < default / 3
    deadline = limit + (LONE_DEADLINE_S - default)
    codecs = {"encode": tmp_path / "hangs_in_encode.py", "decode": tmp_path / "hangs_in_decode.py"}
    codecs["encode"].write_text(HANGS)
    codecs["decode"].write_text(HANGS_IN_DECODE)
    with ThreadPoolExecutor(2) as both:  # the two at once: half the test's time
        runs = {
            role: both.submit(_score, codec, clip_320x180, tmp_path / f"{role}.db", env)
            for role, codec in codecs.items()
        }
        outcomes = {role: run.result() for role, run in runs.items()}
    for role, (result, seconds) in outcomes.items():
        assert seconds < deadline, (role, seconds, deadline, result.stderr)
        assert result.returncode == 1
        assert_one_line_error(
            result, f"{role} timeout: no result within the {limit:.0f} s wall-clock limit"
        )
        with sqlite3.connect(tmp_path / f"{role}.db") as store:
            stages = {row[0] for row in store.execute("SELECT stage FROM candidate_runs")}
        assert role in stages  # the timeout is stored with its stage; the rest cancelled


@pytest.mark.slow
def test_an_honest_seed_fits_its_lone_limit_with_room(tmp_path: Path, clip_320x180: Path) -> None:
    """The slowest seed at its slowest quality takes well under a third of its limit."""
    db = tmp_path / "store.db"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "aicodec",
            "run",
            str(HYBRID),
            "--video",
            str(clip_320x180),
            "--qualities",
            "90",
            "--db",
            str(db),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["points"][0]["quality"] == 90
    with sqlite3.connect(db) as store:
        encode, decode = store.execute(
            "SELECT encode_wall_seconds, decode_wall_seconds FROM candidate_runs"
        ).fetchone()
    limit = wall_limit(Settings(), None, 4, 320, 180)
    assert 3 * max(encode, decode) < limit, (encode, decode, limit)
