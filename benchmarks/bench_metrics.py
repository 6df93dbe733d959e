"""PSNR+SSIM throughput (frames/s) at 1280x720: the lab's ``compare`` against ffmpeg's filters.

Run: ``.venv/bin/python benchmarks/bench_metrics.py [--json]``. Both sides measure the same 60
frames: the lab's code on in-memory Frames, ffmpeg reading the two raw yuv420p files with its
``psnr`` and ``ssim`` filters. Each side's time is the best of three runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from aicodec.clips.frames import Frames
from aicodec.ffmpeg import ffmpeg_exe
from aicodec.scoring.metrics import compare
from aicodec.settings import Settings

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
CLIP = MEDIA / "cereus_flower_foliage_720p30.264"
WIDTH, HEIGHT, FPS = 1280, 720, Fraction(30)
START, COUNT, RUNS = 121, 60, 3
RAW = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{WIDTH}x{HEIGHT}", "-framerate", "30"]
FFMPEG_GRAPH = "[0:v]split=2[a0][a1];[1:v]split=2[b0][b1];[a0][b0]psnr;[a1][b1]ssim"


def ffmpeg(*args: str) -> None:
    """Run the bundled ffmpeg quietly; raise CalledProcessError when it fails."""
    subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", "-y", *args],
        check=True,
        capture_output=True,
    )


def synthetic_source(path: Path) -> None:
    """Write 60 seeded 1280x720 frames (moving gradients, texture, noise) as raw yuv420p."""
    rng = np.random.default_rng(20240601)
    rows = np.arange(HEIGHT, dtype=np.float32)[:, None]
    cols = np.arange(WIDTH, dtype=np.float32)[None, :]
    texture = rng.normal(0.0, 12.0, (HEIGHT + 64, WIDTH + 64)).astype(np.float32)
    with open(path, "wb") as handle:
        for index in range(COUNT):
            wave = 60.0 * np.sin((cols + 3 * index) / 37.0) * np.cos((rows - 2 * index) / 23.0)
            luma = (
                110.0 + 0.08 * cols + wave + texture[index : index + HEIGHT, index : index + WIDTH]
            )
            y = np.clip(luma, 0, 255).astype(np.uint8)
            u = np.clip(
                128 + 40 * np.sin(cols[:, ::2] / 50.0 + index / 9.0) + 0 * rows[::2], 0, 255
            )
            v = np.clip(
                128 + 30 * np.cos(rows[::2] / 41.0 - index / 7.0) + 0 * cols[:, ::2], 0, 255
            )
            handle.write(y.tobytes())
            handle.write(u.astype(np.uint8).tobytes())
            handle.write(v.astype(np.uint8).tobytes())


def make_clips(folder: Path) -> tuple[Path, Path, str]:
    """Write the reference and its x264 crf 35 round trip as raw files; name the source."""
    ref, dist, encoded = folder / "reference.yuv", folder / "distorted.yuv", folder / "x264.mp4"
    if CLIP.is_file():
        trim = f"trim=start_frame={START}:end_frame={START + COUNT},setpts=PTS-STARTPTS"
        ffmpeg("-i", str(CLIP), "-vf", trim, "-pix_fmt", "yuv420p", "-f", "rawvideo", str(ref))
        source = f"{CLIP.name} frames {START}..{START + COUNT - 1}"
    else:
        synthetic_source(ref)
        source = f"synthetic numpy frames (seeded): {CLIP} is absent"
    ffmpeg(*RAW, "-i", str(ref), "-c:v", "libx264", "-crf", "35", "-preset", "medium", str(encoded))
    ffmpeg("-i", str(encoded), "-pix_fmt", "yuv420p", "-f", "rawvideo", str(dist))
    return ref, dist, source


def load(path: Path) -> Frames:
    """Read a raw yuv420p file of the benchmark's size into Frames."""
    frames = Frames.from_i420(path.read_bytes(), WIDTH, HEIGHT, FPS)
    if frames.count != COUNT:
        raise SystemExit(f"{path} holds {frames.count} frames, expected {COUNT}")
    return frames


def best_of(runs: int, action) -> float:  # noqa: ANN001 - any zero-argument callable
    """The shortest wall-clock time of ``runs`` calls of ``action`` (seconds)."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def main(argv: list[str] | None = None) -> int:
    """Measure both sides and print a table (or a JSON object with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    settings = Settings()
    with tempfile.TemporaryDirectory(prefix="aicodec-bench-") as tmp:
        ref_path, dist_path, source = make_clips(Path(tmp))
        reference, distorted = load(ref_path), load(dist_path)
        ours_s = best_of(RUNS, lambda: compare(reference, distorted, settings=settings))
        report = compare(reference, distorted, settings=settings)
        ffmpeg_args = [*RAW, "-i", str(dist_path), *RAW, "-i", str(ref_path)]
        ffmpeg_args += ["-lavfi", FFMPEG_GRAPH, "-f", "null", "-"]
        ffmpeg_s = best_of(RUNS, lambda: ffmpeg(*ffmpeg_args))
    ours_fps, ffmpeg_fps = COUNT / ours_s, COUNT / ffmpeg_s
    result = {
        "ours_fps": round(ours_fps, 1),
        "ffmpeg_fps": round(ffmpeg_fps, 1),
        "ratio": round(ours_fps / ffmpeg_fps, 3),
        "frames": COUNT,
        "size": f"{WIDTH}x{HEIGHT}",
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"source: {source}; distorted: x264 crf 35 round trip")
    print(f"{COUNT} frames {WIDTH}x{HEIGHT}, best of {RUNS} runs, {os.cpu_count()} CPU cores")
    print(
        f"ours: PSNR-Y {report.psnr_y:.3f} dB, SSIM-Y {report.ssim_y:.5f} "
        f"(metric_threads={settings.metric_threads or os.cpu_count()})"
    )
    print()
    print(f"{'':<28}{'seconds':>9}{'frames/s':>10}")
    print(f"{'ours: compare (PSNR+SSIM)':<28}{ours_s:>9.3f}{ours_fps:>10.1f}")
    print(f"{'ffmpeg: psnr+ssim filters':<28}{ffmpeg_s:>9.3f}{ffmpeg_fps:>10.1f}")
    print(f"{'ratio (ours / ffmpeg)':<28}{'':>9}{ours_fps / ffmpeg_fps:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
