"""validate, run, score and decode from the command line, checked by independent tools."""

from __future__ import annotations

import hashlib
import json
import re
import runpy
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from aicodec.clips import load_clip
from aicodec.sandbox.probe import namespaces_available
from aicodec.settings import Settings
from tests.conftest import run_ffmpeg_cli
from tests.test_cli import aicodec, assert_one_line_error

ROOT = Path(__file__).resolve().parents[1]
INTRA = ROOT / "baselines" / "seeds" / "intra_dct.py"
HYBRID = ROOT / "baselines" / "seeds" / "hybrid.py"
CODECS = Path(__file__).parent / "codecs"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four frames of the built-in clip as a y4m source."""
    path = tmp_path_factory.mktemp("source") / "source.y4m"
    load_clip(None, Settings(), count=4).frames.write_y4m(path)
    return path


def test_validate_reports_rule_and_line(tmp_path: Path) -> None:
    ok = aicodec("validate", str(INTRA), "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["valid"] is True
    hostile = ROOT / "tests" / "hostile_static" / "import_os.py"
    bad = aicodec("validate", str(hostile), "--json")
    assert bad.returncode == 1
    violation = json.loads(bad.stdout)["violations"][0]
    assert violation["rule"] == "import" and violation["line"] > 0
    table = aicodec("validate", str(hostile))
    assert table.returncode == 1 and "import" in table.stdout
    assert_one_line_error(aicodec("validate", str(tmp_path / "missing.py")), "no such file")


@pytest.mark.slow
@pytest.mark.parametrize("codec", [INTRA, HYBRID], ids=["intra_dct", "hybrid"])
def test_score_figures_equal_what_independent_tools_compute(
    codec: Path, source: Path, tmp_path: Path
) -> None:
    db, kept = tmp_path / "store.db", tmp_path / "kept"
    args = [
        "score",
        str(codec),
        "--video",
        str(source),
        "--qualities",
        "30,50,70,90",
        "--encoders",
        "x264",
        "--db",
        str(db),
        "--json",
    ]
    result = aicodec(*args, "--keep", str(kept))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [point["quality"] for point in data["points"]] == [30, 50, 70, 90]
    assert set(data["bd_rate_vs"]) == {"x264-medium"}
    for point in data["points"]:
        keys = {
            "quality",
            "bytes",
            "kbps",
            "psnr_y",
            "psnr_yuv",
            "ssim_y",
            "encode_fps",
            "decode_fps",
        }
        assert keys <= set(point)
        stream = kept / f"q{point['quality']}.bin"
        assert point["bytes"] == stream.stat().st_size  # every byte the decoder received
        assert point["kbps"] == pytest.approx(8 * point["bytes"] / (4 / 30) / 1000)
        log = run_ffmpeg_cli(
            "-i",
            str(kept / f"q{point['quality']}.y4m"),
            "-i",
            str(source),
            "-lavfi",
            "psnr",
            "-f",
            "null",
            "-",
        )
        ffmpeg_psnr = float(re.search(r"PSNR y:([0-9.]+)", log.stderr).group(1))
        assert point["psnr_y"] == pytest.approx(ffmpeg_psnr, abs=0.01)
    assert data["isolation"].split(":")[0] in ("namespaces", "process")
    again = json.loads(aicodec(*args).stdout)
    assert again["reused"] is True and again["points"] == data["points"]
    with sqlite3.connect(db) as connection:
        runs = connection.execute("SELECT count(*), min(status) FROM candidate_runs").fetchone()
        hashes = connection.execute("SELECT code_hash FROM candidates").fetchall()
        stored = connection.execute(
            "SELECT quality, deterministic, bitstream_sha256, decoded_sha256 FROM candidate_runs"
        ).fetchall()
    assert runs == (4, "ok")
    assert hashes == [(data["candidate"]["code_hash"],)]
    for quality, deterministic, bitstream_sha256, decoded_sha256 in stored:
        # two decodes in two fresh children gave the same frames, and those are the kept ones
        assert deterministic == 1
        bitstream = (kept / f"q{quality}.bin").read_bytes()
        assert bitstream_sha256 == hashlib.sha256(bitstream).hexdigest()
        frames = load_clip(kept / f"q{quality}.y4m", Settings()).frames
        assert decoded_sha256 == hashlib.sha256(frames.i420_bytes()).hexdigest()
    # a third decode, by `aicodec decode` from the kept bitstream alone, gives the same frames
    # (hybrid returns the frame rate as a (numerator, denominator) pair; intra_dct returns none)
    out = tmp_path / "again.y4m"
    rate = ["--fps", "30"] if codec == INTRA else []
    decoded = aicodec("decode", str(codec), str(kept / "q50.bin"), "-o", str(out), *rate)
    assert decoded.returncode == 0, decoded.stderr
    again = load_clip(out, Settings()).content_hash
    assert again == load_clip(kept / "q50.y4m", Settings()).content_hash


@pytest.mark.slow
def test_decode_reproduces_the_kept_frames(source: Path, tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    run = aicodec(
        "run",
        str(INTRA),
        "--video",
        str(source),
        "--qualities",
        "40",
        "--keep",
        str(kept),
        "--db",
        str(tmp_path / "s.db"),
    )
    assert run.returncode == 0, run.stderr
    assert "isolation:" in run.stdout
    out = tmp_path / "out.y4m"
    result = aicodec(
        "decode", str(INTRA), str(kept / "q40.bin"), "-o", str(out), "--fps", "30", "--json"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["frames"] == 4
    decoded = load_clip(out, Settings())
    assert decoded.content_hash == load_clip(kept / "q40.y4m", Settings()).content_hash
    assert_one_line_error(
        aicodec("decode", str(INTRA), str(tmp_path / "none.bin"), "-o", str(out)), "none.bin"
    )


@pytest.mark.slow
def test_failures_are_one_line_and_stored(source: Path, tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    crash = aicodec(
        "run",
        str(CODECS / "crashes_at_quality_60.py"),
        "--video",
        str(source),
        "--qualities",
        "40,60",
        "--db",
        str(db),
    )
    assert_one_line_error(crash, "quality 60: encode: encode error: ValueError")
    assert crash.returncode == 1
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT quality, status, stage FROM candidate_runs ORDER BY quality"
        ).fetchall()
    assert rows[1] == (60, "failed", "encode")
    # quality 40 finished before 60 failed, or was cancelled by that first failure
    assert rows[0] in [(40, "ok", None), (40, "failed", "cancelled")]
    hostile = ROOT / "tests" / "hostile_static" / "exec_string.py"
    refused = aicodec("score", str(hostile), "--video", str(source), "--db", str(db))
    assert_one_line_error(refused, "[dynamic-code]")
    assert_one_line_error(
        aicodec("run", str(INTRA), "--qualities", "20,200", "--db", str(db)), "0..100"
    )
    huge = tmp_path / "huge.py"
    huge.write_text("#" * 300_000)
    assert_one_line_error(aicodec("run", str(huge), "--db", str(db)), "200000-byte limit")


@pytest.mark.slow
def test_a_torch_codec_runs_in_the_sandbox(source: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="torch is an optional extra (pip install aicodec[torch])")
    result = aicodec(
        "run",
        str(CODECS / "torch_pool.py"),
        "--video",
        str(source),
        "--qualities",
        "50",
        "--db",
        str(tmp_path / "t.db"),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    point = json.loads(result.stdout)["points"][0]
    assert 20 < point["psnr_y"] < 40 and point["bytes"] > 0


@pytest.mark.slow
def test_a_constriction_codec_runs_in_the_sandbox(source: Path, tmp_path: Path) -> None:
    codec, kept, db = CODECS / "constriction_dpcm.py", tmp_path / "kept", tmp_path / "c.db"
    assert json.loads(aicodec("validate", str(codec), "--json").stdout)["valid"] is True
    result = aicodec(
        "run",
        str(codec),
        "--video",
        str(source),
        "--qualities",
        "30,70",
        "--keep",
        str(kept),
        "--db",
        str(db),
        "--json",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    mode, _, layers = data["isolation"].partition(": ")
    assert {"rlimits", "audit-hook", "scrubbed-env"} <= set(layers.split(", "))
    if namespaces_available():
        assert mode == "namespaces" and "pivot-root" in layers.split(", ")
    low, high = data["points"]
    assert 0 < low["bytes"] < high["bytes"] and 30 < low["psnr_y"] < high["psnr_y"]
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT status, deterministic, isolation FROM candidate_runs"
        ).fetchall()
    assert rows == [("ok", 1, data["isolation"])] * 2  # each decoded twice, identically
    # the kept bitstream is a range-coded stream the codec reads back outside the sandbox too
    decode = runpy.run_path(str(codec))["decode"]
    first, second = decode((kept / "q30.bin").read_bytes()), decode((kept / "q30.bin").read_bytes())
    frames = load_clip(kept / "q30.y4m", Settings()).frames
    for mine, again, theirs in zip(first, second, (frames.y, frames.u, frames.v), strict=True):
        assert np.array_equal(mine, theirs) and np.array_equal(mine, again)
