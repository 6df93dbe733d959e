"""The Ray executor against the local one on this machine, and a scaling estimate on paper.

Run as ``python benchmarks/bench_ray.py [--json]`` (``make bench`` does). Both executors get
the same cores (a local Ray cluster started here with one CPU per core, and ``--jobs`` one
per core locally), so the figures show Ray's overhead, not a speed-up:

- per sandbox job: many encode jobs of a codec that does nothing on a one-frame clip,
  run through each pool; the wall time per job (and a bare Ray task's round trip);
- scoring a candidate (the hybrid seed) on 3 built-in clips (8 frames each, 4 qualities,
  the x264 ladder already in the store) with each executor, and whether both gave the same
  bitstreams and decoded frames;
- the scaling estimate for an evolve iteration on N workers for three 1080p 60-frame clips,
  from the measured per-job pixel rates, Ray's measured overhead and the driver's measured
  metric rate (the model is printed with the figures).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_sandbox import NOTHING  # the codec that does nothing, beside this script

from aicodec.clips import load_clip
from aicodec.ladder import load_ladder, run_ladder
from aicodec.pools.local import job_count, make_pool
from aicodec.sandbox.execute import SandboxJob, run_sandbox_job
from aicodec.scoring.candidate import score_clips
from aicodec.scoring.metrics import measure_encoding
from aicodec.settings import Settings
from aicodec.store import Store

ROOT = Path(__file__).resolve().parents[1]
HYBRID = ROOT / "baselines" / "seeds" / "hybrid.py"
CLIPS = ["builtin:default", "builtin:still", "builtin:shake"]
FRAMES = 8
QUALITIES = [20, 40, 60, 80]
TINY_JOBS = 24
ROUNDS = 2
# the clip set of the estimate: three 1080p clips of 60 frames
TARGET_PIXELS = 1920 * 1080 * 60
TARGET_CLIPS = 3
TARGET_FRAME_BYTES = 1920 * 1080 * 3 // 2
LINK_BYTES_S = 1.0e9  # the driver's network link assumed for the estimate (10 GbE, bytes/s)
WORKERS = [1, 2, 4, 8, 12, 16, 24, 32, 48, 64]


def tiny_jobs(settings: Settings) -> float:
    """Seconds per job of TINY_JOBS no-op encodes on a one-frame clip (after a warm-up)."""
    clip = load_clip(None, settings, count=1)
    job = SandboxJob("encode", NOTHING, settings, 60.0, quality=50)
    with make_pool(settings) as pool:
        for future in [pool.submit(run_sandbox_job, job, clip, pool.cancel) for _ in range(2)]:
            future.result()  # workers started, the clip in place
        started = time.perf_counter()
        futures = [pool.submit(run_sandbox_job, job, clip, pool.cancel) for _ in range(TINY_JOBS)]
        for future in futures:
            report, _ = future.result()
            if not report.ok:
                raise SystemExit(f"tiny job failed: {report.describe()}")
        return (time.perf_counter() - started) / TINY_JOBS


def bare_task_s(settings: Settings) -> float:
    """Median round trip (s) of a Ray task that does nothing, sent one at a time."""
    times = []
    with make_pool(settings) as pool:
        for _ in range(30):
            started = time.perf_counter()
            pool.submit(int, 0).result()
            times.append(time.perf_counter() - started)
    return statistics.median(times[5:])


def prime(db: Path) -> None:
    """The x264 ladder of the three clips in a store (so both scores start from it)."""
    settings = Settings(db=f"sqlite:///{db}")
    store = Store(settings.db)
    ladder = load_ladder(settings.ladder_file)
    for name in CLIPS:
        run_ladder(
            load_clip(name, settings, count=FRAMES), store, settings, ladder, encoders=["x264"]
        )
    store.close()


def score(db: Path, settings: Settings) -> float:
    """Wall seconds to score the hybrid seed on the three clips with ``settings``."""
    settings = settings.model_copy(update={"db": f"sqlite:///{db}"})
    store = Store(settings.db)
    clips = [load_clip(name, settings, count=FRAMES) for name in CLIPS]
    ladder = load_ladder(settings.ladder_file)
    started = time.perf_counter()
    score_clips(
        HYBRID.read_text(),
        "hybrid.py",
        clips,
        store,
        settings,
        ladder,
        QUALITIES,
        encoders=["x264"],
    )
    seconds = time.perf_counter() - started
    store.close()
    return seconds


def stored_runs(db: Path) -> list[tuple]:  # type: ignore[type-arg]
    """(clip, quality, bitstream hash, decoded hash, pixels, encode s, decode s) of every
    run, in order."""
    with sqlite3.connect(db) as connection:
        return connection.execute(
            "select r.clip_id, r.quality, r.bitstream_sha256, r.decoded_sha256, "
            "c.width * c.height * c.frame_count, r.encode_wall_seconds, r.decode_wall_seconds "
            "from candidate_runs r join clips c on c.id = r.clip_id order by r.clip_id, r.quality"
        ).fetchall()


def metric_rate(settings: Settings) -> float:
    """Pixels per second the driver measures (PSNR, SSIM) a decoded clip at (warm)."""
    clip = load_clip(None, settings, count=FRAMES).frames
    other = load_clip(None, settings, start=FRAMES, count=FRAMES).frames
    times = []
    for _ in range(4):
        started = time.perf_counter()
        measure_encoding(clip, other, 1000, 1.0, settings=settings)
        times.append(time.perf_counter() - started)
    return clip.width * clip.height * clip.count / statistics.median(times[1:])


def estimate(enc_px_s: float, dec_px_s: float, overhead_s: float, metric_px_s: float) -> dict:  # type: ignore[type-arg]
    """Wall seconds of one evolve iteration's scoring on N workers (the model of the doc)."""
    points = TARGET_CLIPS * len(QUALITIES)
    encode_s = TARGET_PIXELS / enc_px_s + overhead_s
    decode_s = TARGET_PIXELS / dec_px_s + overhead_s
    transfer_s = TARGET_PIXELS * 1.5 / LINK_BYTES_S  # one decode's frames to the driver
    work_s = points * (encode_s + 2 * decode_s)
    chain_s = encode_s + decode_s + transfer_s  # the slowest point: encode, then its decodes
    driver_s = points * (TARGET_PIXELS / metric_px_s + 2 * transfer_s)  # metrics + frames in
    by_workers = {n: max(work_s / n, chain_s) + driver_s for n in WORKERS}
    return {
        "jobs": points * 3,
        "encode_s": encode_s,
        "decode_s": decode_s,
        "work_s": work_s,
        "critical_path_s": chain_s,
        "driver_serial_s": driver_s,
        "stops_scaling_at_workers": math.ceil(work_s / chain_s),
        "wall_s_by_workers": by_workers,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    cores = job_count(Settings())
    local = Settings(jobs=cores)
    os.environ.pop("RAY_ADDRESS", None)
    connect_started = time.perf_counter()
    ray = Settings(executor="ray", ray_address="local", jobs=cores)
    from aicodec.pools.local import start_executor

    where = start_executor(ray)
    connect_s = time.perf_counter() - connect_started
    per_job = {"local": tiny_jobs(local), "ray": tiny_jobs(ray)}
    bare_s = bare_task_s(ray)
    seconds: dict[str, list[float]] = {"local": [], "ray": []}
    runs = {}
    with tempfile.TemporaryDirectory(prefix="aicodec-bench-ray-") as folder:
        primed = Path(folder) / "primed.db"
        prime(primed)
        for round_ in range(ROUNDS):  # alternated: the machine's load changes meanwhile
            for name, settings in (("local", local), ("ray", ray)):
                db = Path(folder) / f"{name}{round_}.db"
                shutil.copy(primed, db)
                seconds[name].append(score(db, settings))
                runs[name] = stored_runs(db)
    same = [row[:4] for row in runs["local"]] == [row[:4] for row in runs["ray"]]
    enc = statistics.median(row[4] / row[5] for row in runs["local"])
    dec = statistics.median(row[4] / row[6] for row in runs["local"])
    overhead = max(0.0, per_job["ray"] - per_job["local"]) * cores  # per job, one worker
    metric_px_s = metric_rate(Settings())
    model = estimate(enc, dec, overhead, metric_px_s)
    figures = {
        "cores": cores,
        "cluster": where,
        "ray_connect_s": connect_s,
        "tiny_job_s": per_job,
        "ray_overhead_per_job_s": overhead,
        "bare_ray_task_s": bare_s,
        "score_3_clips_s": seconds,
        "identical_results": same,
        "encode_px_per_s": enc,
        "decode_px_per_s": dec,
        "driver_metric_px_per_s": metric_px_s,
        "estimate_1080p60_3_clips": model,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"Ray executor against local on this machine ({cores} cores; {where})")
    print(f"  starting a local cluster: {connect_s:.1f} s (once per process)")
    print(f"  sandbox job, no-op codec, {TINY_JOBS} jobs on {cores} workers, seconds per job:")
    print(
        f"    local {per_job['local']:.3f} s   ray {per_job['ray']:.3f} s   "
        f"-> Ray adds {overhead:.3f} s per job on one worker"
    )
    print(f"  a bare Ray task's round trip: {bare_s * 1000:.1f} ms")
    print(
        f"  scoring hybrid.py on {len(CLIPS)} built-in clips ({FRAMES} frames; qualities "
        f"{','.join(map(str, QUALITIES))}; x264 ladder cached), {ROUNDS} rounds:"
    )
    for name, times in seconds.items():
        print(f"    {name:<6}" + "   ".join(f"{value:.1f} s" for value in times))
    print(
        f"    best ray / best local: {min(seconds['ray']) / min(seconds['local']):.2f}x; "
        f"same bitstreams and decoded frames: {same}"
    )
    print(
        f"  hybrid.py per job: encode {enc / 1e3:.0f} kpixel/s, decode {dec / 1e3:.0f} "
        f"kpixel/s; the driver's PSNR+SSIM {metric_px_s / 1e6:.0f} Mpixel/s"
    )
    print(
        "Estimate: one evolve iteration scoring hybrid.py-like code on three 1080p clips of "
        "60 frames at 4 qualities"
    )
    print(
        f"  model: {model['jobs']} jobs (clips x qualities x (1 encode + 2 decodes)); a job "
        "takes pixels / the measured rate + Ray's overhead;"
    )
    print(
        "  wall(N) = max(work / N, critical path) + driver's serial part (metrics, decoded "
        f"frames in over {LINK_BYTES_S / 1e9:.0f} GB/s);"
    )
    print("  the ladder is encoded once per clip set and cached, so it is not in an iteration")
    print(
        f"  encode {model['encode_s']:.0f} s, decode {model['decode_s']:.0f} s per job; "
        f"work {model['work_s'] / 3600:.1f} CPU-hours; critical path "
        f"{model['critical_path_s']:.0f} s; driver {model['driver_serial_s']:.0f} s"
    )
    for workers, wall in model["wall_s_by_workers"].items():
        print(f"    N = {workers:>3}: {wall / 60:>7.1f} min")
    print(
        f"  it stops scaling at about {model['stops_scaling_at_workers']} workers: beyond, "
        "the slowest encode followed by its decode sets the time"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
