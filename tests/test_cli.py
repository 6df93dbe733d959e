"""The command line, run as a real subprocess: help, JSON shapes, tables, one-line errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from aicodec.clips import load_clip
from aicodec.settings import Settings
from tests.conftest import run_ffmpeg_cli


def aicodec(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``aicodec ARGS`` in a fresh interpreter, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "aicodec", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        check=False,
    )


# a plain progress line, written when stderr is not a terminal and the command has run for a
# while (AICODEC_PROGRESS_INTERVAL_S): progress, not part of an error
PROGRESS_LINE = re.compile(r"aicodec: \d+:\d\d:\d\d ")


def assert_one_line_error(result: subprocess.CompletedProcess[str], text: str) -> None:
    """A failure: non-zero exit, one line on stderr naming the problem (after any plain
    progress lines of a command that ran a while), no traceback."""
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    lines = [line for line in lines if not PROGRESS_LINE.match(line)]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and text in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout


@pytest.fixture(scope="module")
def clip_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Six frames of the built-in clip as y4m, and an x264 CRF 35 round trip of them."""
    folder = tmp_path_factory.mktemp("pair")
    reference = folder / "ref.y4m"
    load_clip(None, Settings(), count=6).frames.write_y4m(reference)
    encoded, distorted = folder / "enc.mkv", folder / "dist.y4m"
    run_ffmpeg_cli(
        "-v", "error", "-i", str(reference), "-c:v", "libx264", "-crf", "35", str(encoded)
    )
    run_ffmpeg_cli("-v", "error", "-i", str(encoded), "-pix_fmt", "yuv420p", str(distorted))
    return reference, distorted


def test_help_lists_every_command_and_each_has_json() -> None:
    result = aicodec("--help")
    assert result.returncode == 0
    for command in ("clip", "compare", "bdrate", "baselines"):
        assert command in result.stdout
        sub = aicodec(command, "--help")
        assert sub.returncode == 0 and "--json" in sub.stdout
    assert aicodec("--version").stdout.startswith("aicodec ")


def test_clip_json_describes_the_builtin_clip() -> None:
    info = json.loads(aicodec("clip", "--json").stdout)
    assert info["name"] == "builtin:default"
    assert (info["width"], info["height"], info["frames"], info["fps"]) == (352, 288, 30, 30.0)
    assert len(info["hash"]) == 64


def test_compare_json_has_the_promised_keys(clip_pair: tuple[Path, Path]) -> None:
    reference, distorted = clip_pair
    result = aicodec("compare", str(reference), str(distorted), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    required = {"psnr_y", "psnr_u", "psnr_v", "psnr_yuv", "ssim_y", "frames", "per_frame"}
    assert required <= set(report) and "vmaf" not in report
    assert report["frames"] == 6 and len(report["per_frame"]) == 6
    assert 25 < report["psnr_y"] < 45 and 0.5 < report["ssim_y"] < 1
    expected_yuv = (6 * report["psnr_y"] + report["psnr_u"] + report["psnr_v"]) / 8
    assert report["psnr_yuv"] == pytest.approx(expected_yuv)
    weighted = json.loads(
        aicodec("compare", str(reference), str(distorted), "--weights", "4,1,1", "--json").stdout
    )
    assert weighted["psnr_yuv_weights"] == [4, 1, 1]
    assert weighted["psnr_yuv"] == pytest.approx(
        (4 * report["psnr_y"] + report["psnr_u"] + report["psnr_v"]) / 6
    )


@pytest.mark.slow
def test_compare_with_vmaf_and_identical_clips(clip_pair: tuple[Path, Path]) -> None:
    reference, distorted = clip_pair
    scored = aicodec("compare", str(reference), str(distorted), "--vmaf", "--json")
    scored = json.loads(scored.stdout)
    assert 0 <= scored["vmaf"] <= 100 and "vmaf" in scored["per_frame"][0]
    same = json.loads(aicodec("compare", str(reference), str(reference), "--json").stdout)
    assert same["psnr_y"] is None and same["ssim_y"] == pytest.approx(1.0)  # inf PSNR -> null


def test_compare_table_output(clip_pair: tuple[Path, Path]) -> None:
    reference, distorted = clip_pair
    result = aicodec("compare", str(reference), str(distorted), "--per-frame")
    assert result.returncode == 0
    for heading in ("PSNR-Y dB", "SSIM-Y", "per frame"):
        assert heading in result.stdout


@pytest.mark.slow
def test_bdrate_json_and_errors(tmp_path: Path) -> None:
    anchor = tmp_path / "anchor.csv"
    anchor.write_text(
        "qp,kbps,psnr\n22,9487.76,40.037\n27,4593.60,38.615\n32,2486.44,36.845\n37,1358.24,34.851\n"
    )
    test = tmp_path / "test.json"
    test.write_text(
        json.dumps([[9787.80, 40.121], [4469.00, 38.651], [2451.52, 36.970], [1356.24, 34.987]])
    )
    result = aicodec("bdrate", str(anchor), str(test), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["bd_rate_percent"] == pytest.approx(-4.4175, abs=1e-3)  # JCT-VC pchip
    assert data["bd_psnr_db"] == pytest.approx(0.1197, abs=1e-3)
    akima = aicodec("bdrate", str(anchor), str(test), "--method", "akima", "--json")
    akima = json.loads(akima.stdout)
    assert akima["method"] == "akima" and akima["bd_rate_percent"] != data["bd_rate_percent"]
    short = tmp_path / "short.json"
    short.write_text(json.dumps([[1000, 30], [2000, 33], [4000, 36]]))
    assert_one_line_error(aicodec("bdrate", str(anchor), str(short)), "has 3 point")
    assert_one_line_error(aicodec("bdrate", str(anchor), str(tmp_path / "no.csv")), "no.csv")
    assert_one_line_error(aicodec("bdrate", str(anchor), str(test), "--method", "x"), "'x'")


@pytest.mark.slow
def test_baselines_json_shape_and_cache(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    args = ("baselines", "--frames", "4", "--encoders", "x265,mjpeg", "--db", str(db), "--json")
    first = aicodec(*args)
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["clip"]["frames"] == 4 and len(data["clip"]["hash"]) == 64
    assert list(data["encoders"]) == ["x264-medium", "x265-medium", "mjpeg-ffmpeg"]
    for curve in data["encoders"].values():
        assert len(curve["points"]) == 4
        for point in curve["points"]:
            keys = {"bytes", "kbps", "psnr_y", "psnr_yuv", "ssim_y", "encode_seconds"}
            assert keys <= set(point)
        assert "x264-medium" in curve["bd_rate_vs"]
    assert data["fresh_encodes"] > 0
    second = json.loads(aicodec(*args).stdout)
    assert second["fresh_encodes"] == 0
    assert second["encoders"] == data["encoders"]
    table = aicodec(*args[:-1])
    assert "BD-rate against x264-medium" in table.stdout and "0 encoded" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("clip", "--video", "/no/such/file.mp4"), "no such file"),
        (
            ("clip", "--video", "builtin:nope"),
            "builtin:default, builtin:still, builtin:shake, builtin:carphone, builtin:bikes, "
            "builtin:bunny",
        ),
        (("clip", "--start", "40"), "past the end"),
        (("clip", "--fps", "fast"), "frame rate 'fast'"),
        (("baselines", "--encoders", "hm"), "unknown encoder 'hm'"),
        (("baselines", "--frames", "2", "--db", "/no/such/dir/x.db"), "does not exist"),
        (("compare", "/no/a.y4m", "/no/b.y4m"), "no such file"),
    ],
)
def test_bad_input_is_one_clear_line(args: tuple[str, ...], message: str) -> None:
    assert_one_line_error(aicodec(*args), message)


def test_compare_refuses_different_sizes(clip_pair: tuple[Path, Path], tmp_path: Path) -> None:
    reference, _ = clip_pair
    smaller = tmp_path / "small.y4m"
    run_ffmpeg_cli("-v", "error", "-i", str(reference), "-vf", "scale=176:144", str(smaller))
    assert_one_line_error(aicodec("compare", str(reference), str(smaller)), "sizes differ")
    assert_one_line_error(
        aicodec("compare", str(reference), str(reference), "--weights", "1,1"), "three"
    )


def test_store_file_that_is_not_a_database_is_untouched(tmp_path: Path) -> None:
    notes = tmp_path / "notes.db"
    notes.write_text("keep me\n")
    assert_one_line_error(aicodec("baselines", "--frames", "2", "--db", str(notes)), "database")
    assert notes.read_text() == "keep me\n"
