"""Sandbox overhead per child, ``aicodec score`` per seed, job scaling, hung candidates.

Run as ``python benchmarks/bench_sandbox.py [--json]`` (``make bench`` does). The overhead
is the wall time of a child whose codec does nothing (start-up, isolation, teardown),
median of several runs, for each isolation mode this machine allows. The score time is
``aicodec score SEED`` on the built-in clip (352x288, 30 frames) at four qualities, with
the standard-encoder baselines already in the store (their one-off cost is shown apart).
Job scaling is ``aicodec run hybrid.py`` (sandbox runs only, nothing reused) with
``--jobs 1`` and one job per core. The hung-candidate figures are what a codec whose
encoder (or decoder) never returns costs when scored as a child of the hybrid seed, the
way ``evolve`` scores it: the first timeout cancels the rest.
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
from aicodec.errors import SandboxError
from aicodec.pools.local import job_count
from aicodec.sandbox.folders import work_folder
from aicodec.sandbox.probe import namespaces_available
from aicodec.sandbox.runner import encode_in_sandbox
from aicodec.scoring.candidate import measure_candidate
from aicodec.settings import Settings
from aicodec.store import Store

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


HANGS = {  # a definition that replaces the seed's own, and never returns
    "encode": "\n\ndef encode(frames, quality):\n    while quality >= 0:\n        quality += 1\n",
    "decode": '\n\ndef decode(bitstream):\n    while bitstream:\n        bitstream += b""\n',
}
QUALITIES = [20, 40, 60, 80]


def hung_candidate_cost(db: str) -> dict[str, float]:
    """Seconds until a child of the hybrid seed whose encode (or decode) never returns is
    given up, on the built-in clip at four qualities (the parent's runs are stored)."""
    settings = Settings(db=f"sqlite:///{db}")
    store, clip = Store(settings.db), load_clip(None, settings)
    hybrid = (ROOT / "baselines" / "seeds" / "hybrid.py").read_text()
    parent = measure_candidate(hybrid, "hybrid.py", [clip], store, settings, QUALITIES)[0]
    costs = {}
    for role in HANGS:
        started = time.perf_counter()
        try:
            measure_candidate(
                hybrid.replace(f"\ndef {role}(", f"\ndef _replaced_{role}(") + HANGS[role],
                f"hangs-in-{role}",
                [clip],
                store,
                settings,
                QUALITIES,
                reference_id=parent.candidate_id,
            )
        except SandboxError:
            costs[role] = time.perf_counter() - started
        else:
            raise SystemExit(f"the codec that hangs in {role} was not stopped")
    store.close()
    return costs


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
        hybrid = str(ROOT / "baselines" / "seeds" / "hybrid.py")
        cores = job_count(Settings())
        runs = {
            jobs: timed([*cli, "run", hybrid, "--jobs", str(jobs), "--db", db])
            for jobs in sorted({1, cores})
        }
        hung = hung_candidate_cost(db)
    figures = {
        "child_overhead_s": overhead,
        "baselines_cold_s": baselines_s,
        "score_s": scores,
        "run_hybrid_s_by_jobs": runs,
        "hung_candidate_s": hung,
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
    print("aicodec run hybrid.py on the built-in clip (sandbox only, 4 qualities x 3 children):")
    for jobs, seconds in runs.items():
        speed = runs[min(runs)] / seconds
        print(f"  --jobs {jobs:<5}{seconds:>8.1f} s   ({speed:.2f}x the one-job time)")
    print("a child of hybrid.py that never returns, scored as evolve scores it:")
    for role, seconds in hung.items():
        print(f"  hangs in {role:<7}{seconds:>6.1f} s until given up (cap: 600 s per child)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
