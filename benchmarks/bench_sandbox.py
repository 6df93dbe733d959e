"""Sandbox overhead per child and the wall time of ``aicodec score`` for each seed codec.

Run as ``python benchmarks/bench_sandbox.py [--json]`` (``make bench`` does). The overhead
is the wall time of a child whose codec does nothing (start-up, isolation, teardown),
median of several runs, for each isolation mode this machine allows. The score time is
``aicodec score SEED`` on the built-in clip (352x288, 30 frames) at four qualities, with
the standard-encoder baselines already in the store (their one-off cost is shown apart).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aicodec.clips import load_clip
from aicodec.sandbox.execute import work_folder
from aicodec.sandbox.isolation import namespaces_available
from aicodec.sandbox.runner import encode_in_sandbox
from aicodec.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SEEDS = sorted((ROOT / "baselines" / "seeds").glob("*.py"))
RUNS = 7
NOTHING = """
def encode(frames, quality):
    return b"x"


def decode(bitstream):
    raise ValueError("not used")
"""


def child_overhead(mode: str) -> float:
    """Median wall time (s) of a child running a codec that does nothing."""
    settings = Settings(sandbox_isolation=mode)
    frames = load_clip(None, settings, count=1).frames
    times = []
    with work_folder() as folder:
        for index in range(RUNS):
            report, _ = encode_in_sandbox(NOTHING, frames, 50, folder / str(index), settings)
            if not report.ok:
                raise SystemExit(f"overhead probe failed: {report.describe()}")
            times.append(report.wall_seconds)
    return statistics.median(times)


def timed(command: list[str]) -> float:
    """Wall time (s) of a command that must succeed."""
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    modes = ["namespaces", "process"] if namespaces_available() else ["process"]
    overhead = {mode: child_overhead(mode) for mode in modes}
    cli = [sys.executable, "-m", "aicodec"]
    with tempfile.TemporaryDirectory(prefix="aicodec-bench-") as folder:
        db = str(Path(folder) / "bench.db")
        baselines_s = timed([*cli, "baselines", "--db", db])
        scores = {seed.stem: timed([*cli, "score", str(seed), "--db", db]) for seed in SEEDS}
    figures = {
        "child_overhead_s": overhead,
        "baselines_cold_s": baselines_s,
        "score_s": scores,
        "clip": "built-in 352x288, 30 frames, qualities 20,40,60,80",
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"sandbox child overhead (median of {RUNS}, no-op codec)")
    for mode, seconds in overhead.items():
        print(f"  {mode:<12}{seconds:>8.3f} s per child   (goal < 0.5 s)")
    print(f"standard-encoder baselines, first time: {baselines_s:.1f} s (then cached)")
    print("aicodec score on the built-in clip, 4 qualities, baselines cached:")
    for name, seconds in scores.items():
        print(f"  {name:<12}{seconds:>8.1f} s   (goal < 60 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
