"""Quality metrics: exact synthetic cases, and agreement with ffmpeg, scikit-image and libvmaf."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from aicodec.clips.frames import Frames
from aicodec.errors import FFmpegError, MetricError
from aicodec.ffmpeg import ffmpeg_exe
from aicodec.scoring import metrics
from aicodec.scoring.metrics import (
    compare,
    frame_ssim,
    psnr_from_mse,
    psnr_yuv,
    ssim_per_frame,
    vmaf,
)
from aicodec.settings import Settings

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
RAW_OUT = ["-pix_fmt", "yuv420p", "-f", "rawvideo"]


def random_frames(
    count: int, width: int, height: int, seed: int, low: int = 0, high: int = 256
) -> Frames:
    """Seeded uniform-noise frames with code values in [low, high)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(low, high, (count, height, width), dtype=np.uint8)
    u = rng.integers(low, high, (count, height // 2, width // 2), dtype=np.uint8)
    v = rng.integers(low, high, (count, height // 2, width // 2), dtype=np.uint8)
    return Frames(y, u, v, Fraction(25))


def shifted(frames: Frames, dy: int, du: int, dv: int) -> Frames:
    """The frames with a constant added to every pixel of each plane (no clipping may occur)."""
    planes = []
    for plane, delta in ((frames.y, dy), (frames.u, du), (frames.v, dv)):
        moved = plane.astype(np.int16) + delta
        assert moved.min() >= 0 and moved.max() <= 255
        planes.append(moved.astype(np.uint8))
    return Frames(*planes, frames.fps)


def skimage_ssim(reference: np.ndarray, distorted: np.ndarray) -> float:
    """scikit-image's SSIM with Wang et al.'s parameters (the reference implementation)."""
    return float(
        structural_similarity(
            reference,
            distorted,
            data_range=255,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )


# ---------------------------------------------------------------- synthetic, exact expectations


def test_psnr_from_mse_values() -> None:
    assert psnr_from_mse(0.0) == math.inf
    assert psnr_from_mse(255.0**2) == 0.0
    assert psnr_from_mse(1.0) == pytest.approx(20 * math.log10(255), abs=1e-12)
    assert psnr_from_mse(4.0, peak=1023.0) == pytest.approx(10 * math.log10(1023**2 / 4), abs=1e-12)
    with pytest.raises(MetricError):
        psnr_from_mse(-1.0)


def test_identical_frames_give_infinite_psnr_and_unit_ssim() -> None:
    clip = random_frames(3, 64, 48, seed=1)
    report = compare(clip, clip, settings=Settings())
    assert report.frames == 3
    assert report.psnr_y == report.psnr_u == report.psnr_v == report.psnr_yuv == math.inf
    assert report.ssim_y == 1.0
    for frame in report.per_frame:
        assert frame.psnr_y == frame.psnr_yuv == math.inf
        assert frame.ssim_y == 1.0
    summary = report.to_dict()
    assert summary["psnr_y"] is None and summary["psnr_yuv"] is None
    assert summary["ssim_y"] == 1.0
    json.dumps(summary, allow_nan=False)  # strictly JSON-safe


@pytest.mark.parametrize("delta", [1, 3, 10])
def test_constant_error_gives_exact_psnr(delta: int) -> None:
    clip = random_frames(4, 64, 48, seed=delta, low=20, high=230)
    report = compare(clip, shifted(clip, delta, -delta, delta), settings=Settings())
    expected = 10 * math.log10(255**2 / delta**2)
    for value in (report.psnr_y, report.psnr_u, report.psnr_v, report.psnr_yuv):
        assert value == pytest.approx(expected, abs=1e-9)
    for frame in report.per_frame:
        assert frame.psnr_y == pytest.approx(expected, abs=1e-9)
        assert frame.psnr_v == pytest.approx(expected, abs=1e-9)


def test_sequence_psnr_is_taken_from_the_mean_mse() -> None:
    clip = random_frames(2, 32, 32, seed=5, low=20, high=230)
    first = shifted(clip.window(0, 1), 1, 1, 1)
    second = shifted(clip.window(1, 1), 7, 7, 7)
    distorted = Frames(
        np.concatenate([first.y, second.y]),
        np.concatenate([first.u, second.u]),
        np.concatenate([first.v, second.v]),
        clip.fps,
    )
    report = compare(clip, distorted, settings=Settings())
    assert report.psnr_y == pytest.approx(10 * math.log10(255**2 / ((1 + 49) / 2)), abs=1e-9)
    per_frame_mean = (report.per_frame[0].psnr_y + report.per_frame[1].psnr_y) / 2
    assert report.psnr_y < per_frame_mean  # mean of MSEs, not mean of PSNRs


@pytest.mark.parametrize("weights", [(6, 1, 1), (1, 1, 1), (4, 1, 1), (1, 0, 0)])
def test_psnr_yuv_weights_follow_the_formula(weights: tuple[int, int, int]) -> None:
    clip = random_frames(2, 64, 48, seed=7, low=20, high=230)
    report = compare(clip, shifted(clip, 2, 5, 9), settings=Settings(psnr_yuv_weights=weights))
    w_y, w_u, w_v = weights
    expected = (w_y * report.psnr_y + w_u * report.psnr_u + w_v * report.psnr_v) / sum(weights)
    assert report.psnr_yuv == pytest.approx(expected, abs=1e-12)
    assert report.weights == weights
    assert report.to_dict()["psnr_yuv_weights"] == list(weights)
    frame = report.per_frame[0]
    assert frame.psnr_yuv == pytest.approx(
        (w_y * frame.psnr_y + w_u * frame.psnr_u + w_v * frame.psnr_v) / sum(weights), abs=1e-12
    )
    if weights == (1, 0, 0):
        assert report.psnr_yuv == pytest.approx(report.psnr_y, abs=1e-12)


def test_psnr_yuv_is_infinite_when_a_plane_is_lossless() -> None:
    assert psnr_yuv(40.0, math.inf, 45.0, (6, 1, 1)) == math.inf
    assert psnr_yuv(40.0, 42.0, 45.0, (6, 1, 1)) == pytest.approx((240 + 42 + 45) / 8)
    with pytest.raises(MetricError):
        psnr_yuv(40.0, 42.0, 45.0, (0, 0, 0))


def test_mismatched_sizes_raise_metric_error_naming_both() -> None:
    with pytest.raises(MetricError, match=r"64x48.*32x32"):
        compare(random_frames(2, 64, 48, 1), random_frames(2, 32, 32, 1), settings=Settings())


def test_mismatched_counts_raise_metric_error_naming_both() -> None:
    with pytest.raises(MetricError, match=r"has 3.*has 2"):
        compare(random_frames(3, 64, 48, 1), random_frames(2, 64, 48, 1), settings=Settings())


def test_zero_frames_raise_metric_error() -> None:
    empty = random_frames(0, 64, 48, 1)
    with pytest.raises(MetricError, match="zero frames"):
        compare(empty, empty, settings=Settings())


def test_frames_smaller_than_the_ssim_window_raise_metric_error() -> None:
    tiny = random_frames(1, 8, 8, 1)
    with pytest.raises(MetricError, match="11x11"):
        compare(tiny, tiny, settings=Settings())


def test_report_dict_has_exactly_the_documented_keys() -> None:
    clip = random_frames(2, 64, 48, seed=3, low=20, high=230)
    summary = compare(clip, shifted(clip, 1, 2, 3), settings=Settings()).to_dict()
    assert list(summary) == [
        "psnr_y",
        "psnr_u",
        "psnr_v",
        "psnr_yuv",
        "ssim_y",
        "frames",
        "psnr_yuv_weights",
        "per_frame",
    ]
    assert summary["frames"] == 2
    assert [frame["index"] for frame in summary["per_frame"]] == [0, 1]
    assert "vmaf" not in summary["per_frame"][0]
    json.dumps(summary, allow_nan=False)


def test_ssim_matches_scikit_image_on_synthetic_content() -> None:
    rng = np.random.default_rng(11)
    base = rng.integers(0, 256, (2, 72, 88), dtype=np.uint8)
    noisy = np.clip(base.astype(np.int16) + rng.integers(-25, 26, base.shape), 0, 255)
    bright = np.full((2, 72, 88), 250, dtype=np.uint8) + rng.integers(0, 4, (2, 72, 88), np.uint8)
    cases = [
        (base, noisy.astype(np.uint8)),
        (bright, np.clip(bright.astype(np.int16) - 2, 0, 255).astype(np.uint8)),
        (base, rng.integers(0, 256, base.shape, dtype=np.uint8)),
    ]
    for reference, distorted in cases:
        ours = ssim_per_frame(reference, distorted, threads=2)
        for index in range(2):
            expected = skimage_ssim(reference[index], distorted[index])
            assert ours[index] == pytest.approx(expected, abs=1e-5)


def test_ssim_does_not_depend_on_threads_or_strips(monkeypatch: pytest.MonkeyPatch) -> None:
    clip = random_frames(3, 96, 80, seed=9)
    other = random_frames(3, 96, 80, seed=10)
    whole = ssim_per_frame(clip.y, other.y, threads=1)
    assert np.array_equal(ssim_per_frame(clip.y, other.y, threads=3), whole)
    monkeypatch.setattr(metrics, "STRIP_PIXELS", 96 * 40)  # several strips per frame
    assert len(metrics._strips(80, 96, frames=1, workers=2)) > 1
    assert len(metrics._strips(80, 96, frames=3, workers=2)) == 1  # whole frames suffice
    np.testing.assert_allclose(ssim_per_frame(clip.y, other.y, threads=1), whole, atol=1e-12)
    np.testing.assert_allclose(ssim_per_frame(clip.y[:1], other.y[:1], threads=4), whole[:1])
    assert frame_ssim(clip.y[0], other.y[0]) == pytest.approx(whole[0], abs=1e-12)


# ---------------------------------------------------------------- real video against references


def media(name: str) -> Path:
    """A clip from ../shared/media beside the repository, or skip with the reason."""
    path = MEDIA / name
    if not path.is_file():
        pytest.skip(f"real clip {name} is absent: the shared media folder {MEDIA} is not here")
    return path


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the bundled ffmpeg directly (an independent reference tool); stderr is kept."""
    return subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-hide_banner", "-y", *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
    )


@dataclass
class Pair:
    """A reference clip and its x264 crf 35 round trip, as raw yuv420p files and as Frames."""

    reference: Frames
    distorted: Frames
    ref_path: Path
    dist_path: Path

    def inputs(self, ref_path: Path | None = None, dist_path: Path | None = None) -> list[str]:
        """ffmpeg options reading the raw files: the distorted first, then the reference."""
        size = f"{self.reference.width}x{self.reference.height}"
        raw = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", size, "-framerate", "25"]
        dist, ref = dist_path or self.dist_path, ref_path or self.ref_path
        return [*raw, "-i", str(dist), *raw, "-i", str(ref)]


def make_pair(source: Path, folder: Path, width: int, height: int, start: int, count: int) -> Pair:
    """Decode a window of a real clip and make its x264 crf 35 round trip, both as raw files."""
    folder.mkdir(parents=True, exist_ok=True)
    ref_path, dist_path = folder / "reference.yuv", folder / "distorted.yuv"
    trim = f"trim=start_frame={start}:end_frame={start + count},setpts=PTS-STARTPTS"
    window = ["-i", str(source), "-map", "0:v:0", "-vf", trim]
    run(*window, *RAW_OUT, str(ref_path))
    size = f"{width}x{height}"
    raw = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", size, "-framerate", "25"]
    encoded = folder / "x264.mp4"
    run(*raw, "-i", str(ref_path), "-c:v", "libx264", "-crf", "35", "-preset", "fast", str(encoded))
    run("-i", str(encoded), *RAW_OUT, str(dist_path))
    frames = [
        Frames.from_i420(path.read_bytes(), width, height, Fraction(25))
        for path in (ref_path, dist_path)
    ]
    assert frames[0].count == frames[1].count == count
    return Pair(frames[0], frames[1], ref_path, dist_path)


@pytest.fixture(scope="module")
def carphone(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    """Carphone (176x144), all 120 frames, and its x264 crf 35 round trip."""
    source = media("carphone_qcif.mp4")
    return make_pair(source, tmp_path_factory.mktemp("carphone"), 176, 144, 0, 120)


@pytest.fixture(scope="module")
def foreman(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    """Foreman (352x288), frames 0..29, and its x264 crf 35 round trip."""
    source = media("foreman_cif25.264")
    return make_pair(source, tmp_path_factory.mktemp("foreman"), 352, 288, 0, 30)


def ffmpeg_psnr(pair: Pair, folder: Path) -> tuple[list[dict[str, float]], dict[str, float]]:
    """ffmpeg's psnr filter: its per-frame stats file and its summary line (y, u, v, average)."""
    stats = folder / "psnr_stats.log"
    graph = "[0:v][1:v]psnr=stats_file=psnr_stats.log"
    result = run(*pair.inputs(), "-lavfi", graph, "-f", "null", "-", cwd=folder)
    frames = []
    for line in stats.read_text().splitlines():
        fields = dict(item.split(":", 1) for item in line.split())
        frames.append({key: float(value) for key, value in fields.items()})
    match = re.search(r"PSNR y:(\S+) u:(\S+) v:(\S+) average:(\S+)", result.stderr)
    assert match, result.stderr
    summary = dict(zip(("y", "u", "v", "average"), map(float, match.groups()), strict=True))
    return frames, summary


@pytest.mark.media
@pytest.mark.parametrize("clip", ["carphone", "foreman"])
def test_psnr_agrees_with_ffmpeg(clip: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    pair: Pair = request.getfixturevalue(clip)
    report = compare(pair.reference, pair.distorted, settings=Settings())
    stats, summary = ffmpeg_psnr(pair, tmp_path)
    assert len(stats) == report.frames == pair.reference.count
    for plane in ("y", "u", "v"):
        ours = getattr(report, f"psnr_{plane}")
        assert ours == pytest.approx(summary[plane], abs=0.01)
        from_stats = 10 * math.log10(255**2 / np.mean([f[f"mse_{plane}"] for f in stats]))
        assert ours == pytest.approx(from_stats, abs=0.01)
        for frame, row in zip(report.per_frame, stats, strict=True):
            assert getattr(frame, f"psnr_{plane}") == pytest.approx(row[f"psnr_{plane}"], abs=0.01)
    assert 25.0 < report.psnr_y < 45.0  # a real, lossy distortion


@pytest.mark.media
@pytest.mark.parametrize("clip", ["carphone", "foreman"])
def test_ssim_agrees_with_scikit_image(clip: str, request: pytest.FixtureRequest) -> None:
    pair: Pair = request.getfixturevalue(clip)
    report = compare(pair.reference, pair.distorted, settings=Settings())
    indices = range(0, pair.reference.count, max(1, pair.reference.count // 24))
    assert len(indices) >= 20
    for index in indices:
        expected = skimage_ssim(pair.reference.y[index], pair.distorted.y[index])
        assert report.per_frame[index].ssim_y == pytest.approx(expected, abs=1e-4)
    assert report.ssim_y == pytest.approx(np.mean([f.ssim_y for f in report.per_frame]), abs=1e-12)
    assert 0.5 < report.ssim_y < 0.999


@pytest.mark.media
def test_vmaf_agrees_with_libvmaf_run_directly(carphone: Pair, tmp_path: Path) -> None:
    count = 30
    reference, distorted = carphone.reference.window(0, count), carphone.distorted.window(0, count)
    ref_path, dist_path = tmp_path / "ref.yuv", tmp_path / "dist.yuv"
    ref_path.write_bytes(reference.i420_bytes())
    dist_path.write_bytes(distorted.i420_bytes())
    graph = "[0:v][1:v]libvmaf=model=version=vmaf_v0.6.1:log_fmt=json:log_path=direct.json"
    inputs = carphone.inputs(ref_path=ref_path, dist_path=dist_path)
    run(*inputs, "-lavfi", graph, "-f", "null", "-", cwd=tmp_path)
    log = json.loads((tmp_path / "direct.json").read_text())
    expected_frames = [frame["metrics"]["vmaf"] for frame in log["frames"]]
    expected_mean = log["pooled_metrics"]["vmaf"]["mean"]

    pooled, per_frame = vmaf(reference, distorted, model="vmaf_v0.6.1", threads=2)
    assert pooled == pytest.approx(expected_mean, abs=0.5)
    assert len(per_frame) == count
    for ours, theirs in zip(per_frame, expected_frames, strict=True):
        assert ours == pytest.approx(theirs, abs=0.5)
    assert 20.0 < pooled < 99.0

    report = compare(reference, distorted, settings=Settings(), with_vmaf=True)
    assert report.vmaf == pytest.approx(pooled, abs=1e-9)
    summary = report.to_dict()
    assert summary["vmaf"] == pytest.approx(pooled, abs=1e-9)
    assert list(summary).index("vmaf") == list(summary).index("frames") + 1
    assert summary["per_frame"][0]["vmaf"] == pytest.approx(per_frame[0], abs=1e-9)


def test_vmaf_failure_is_an_ffmpeg_error_with_ffmpegs_message() -> None:
    clip = random_frames(2, 64, 48, seed=4)
    with pytest.raises(FFmpegError, match="libvmaf failed: .+"):
        vmaf(clip, clip, model="vmaf_no_such_model", threads=1)
    with pytest.raises(MetricError, match="model version"):
        vmaf(clip, clip, model="vmaf_v0.6.1:log_path=/tmp/x", threads=1)


MEASURE = """
from aicodec.clips import load_clip
from aicodec.scoring.metrics import compare
from aicodec.settings import Settings
clip = load_clip(None, Settings(), count=2)
print(compare(clip.frames, clip.frames, settings=Settings()).ssim_y)
"""


@pytest.mark.slow  # one of the slowest of the fast lane
@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare for a read-only view of the package",
)
def test_the_kernels_run_for_a_user_who_cannot_write_the_package_or_home(tmp_path: Path) -> None:
    """Another user of the same installation: the package folder read-only, no home."""
    package = Path(metrics.__file__).parent
    script = tmp_path / "measure.py"
    script.write_text(MEASURE)
    environment = {**os.environ, "HOME": "/proc/no-home", "TMPDIR": str(tmp_path)}
    environment.pop("NUMBA_CACHE_DIR", None)
    environment.pop("XDG_CACHE_HOME", None)
    shell = f"mount --bind -o ro {package} {package} && exec {sys.executable} {script}"
    result = subprocess.run(
        ["unshare", "--mount", "sh", "-c", shell],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) == pytest.approx(1.0)
    assert (tmp_path / f"aicodec-numba-{os.getuid()}").is_dir()  # where the kernels went
