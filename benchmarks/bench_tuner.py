"""The offline searches on the same budget: the mutation random walk, Optuna's TPE and GP.

Run as ``python benchmarks/bench_tuner.py [--iterations N] [--frames F] [--seed S]
[--methods mutation,tpe,gp] [--work DIR] [--json]`` (the stores go to ``--work``, by
default ``benchmarks/.bench-tuner/``; a base store found there is reused).

The objective is the lab's own fitness on a cheap but real setting: the BD-rate (PSNR-Y)
against x264 of a codec run in the sandbox on the first F frames (default 8) of
``builtin:default`` at the qualities 20,40,60,80. The hybrid seed
(``baselines/seeds/hybrid.py``) and the x264 ladder are scored once into a base store,
which each method starts from (a copy of it). Each method is then one real
``aicodec evolve`` run of N iterations (default 15; first stage off, since the clip is
the first stage's window; adoption on the training clip) with ``--provider mutation`` or
``--provider tuner`` and ``AICODEC_TUNER_SAMPLER`` set to tpe or gp. The figure after
evaluation k is the best fitness among the seed and the first k iterations' codecs (a
failed iteration scores nothing and keeps the best as it was).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
HYBRID = REPO / "baselines" / "seeds" / "hybrid.py"
QUALITIES = "20,40,60,80"
METHODS = {  # name: (provider, tuner sampler)
    "mutation": ("mutation", None),
    "tpe": ("tuner", "tpe"),
    "gp": ("tuner", "gp"),
}


def aicodec(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The lab's CLI in a child process (this checkout's sources first)."""
    environment = {**os.environ, "PYTHONPATH": str(REPO / "src"), **(env or {})}
    environment.pop("ANTHROPIC_API_KEY", None)
    result = subprocess.run(
        [sys.executable, "-m", "aicodec", *args], capture_output=True, text=True, env=environment
    )
    if result.returncode not in (0, 1):
        raise SystemExit(f"aicodec {' '.join(args[:1])} failed:\n{result.stderr[-3000:]}")
    return result


def base_store(work: Path, frames: int) -> Path:
    """A store with the hybrid seed and the x264 ladder scored on the clip."""
    db = work / "base.db"
    if not db.exists():
        clip = ["--video", "builtin:default", "--frames", str(frames)]
        aicodec(
            ["score", str(HYBRID), *clip, "--qualities", QUALITIES, "--encoders", "x264"]
            + ["--db", str(work / "base-building.db")]
        )
        (work / "base-building.db").rename(db)
    return db


def run_method(work: Path, method: str, iterations: int, frames: int, seed: int) -> dict[str, Any]:
    """One method's evolve run from a copy of the base store; its summary and seconds."""
    provider, sampler = METHODS[method]
    db = work / f"{method}.db"
    shutil.copyfile(work / "base.db", db)
    shutil.rmtree(work / f"{method}-codecs", ignore_errors=True)
    env = {"AICODEC_EVOLVE_SCREEN_FRAMES": "0"}
    if sampler is not None:
        env["AICODEC_TUNER_SAMPLER"] = sampler
    args = ["evolve", "--iterations", str(iterations), "--video", "builtin:default"]
    args += ["--frames", str(frames), "--qualities", QUALITIES, "--encoders", "x264"]
    args += ["--holdout", "none", "--parent", str(HYBRID), "--seed", str(seed)]
    args += ["--provider", provider, "--db", str(db), "--git-repo", str(work / f"{method}-codecs")]
    started = time.monotonic()
    result = aicodec([*args, "--json"], env)
    seconds = time.monotonic() - started
    summary = json.loads(result.stdout)
    return {"summary": summary, "seconds": seconds}


def best_so_far(summary: dict[str, Any]) -> list[float]:
    """The best fitness after each evaluation (the seed's before any)."""
    best = summary["start_bd_rate_vs_x264"]
    curve = []
    for entry in sorted(summary["iterations"], key=lambda item: item["iteration"]):
        if entry["status"] == "scored" and entry["bd_rate"] is not None:
            best = min(best, entry["bd_rate"])
        curve.append(best)
    return curve


def print_table(results: dict[str, dict[str, Any]], iterations: int) -> None:
    """Best-so-far after each evaluation per method, each evaluation's own figure beside it."""
    seed = next(iter(results.values()))["seed_bd_rate"] if results else None
    print(f"best BD-rate vs x264 so far (%), seed {seed:+.2f} %; each iteration's own in ()")
    print("eval " + "".join(f"{method:>22}" for method in results))
    for index in range(iterations):
        cells = []
        for method in results:
            curve, values = results[method]["best_so_far"], results[method]["bd_rates"]
            if index >= len(curve):
                cells.append(f"{'':>22}")
                continue
            own = "failed" if values[index] is None else f"{values[index]:+.2f}"
            cells.append(f"{curve[index]:+8.2f} ({own:>8})".rjust(22))
        print(f"{index + 1:>4} " + "".join(cells))
    for method, found in results.items():
        print(f"{method}: {found['seconds']:.0f} s, failures {found['failures']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--methods", default="mutation,tpe,gp")
    parser.add_argument("--work", type=Path, default=REPO / "benchmarks" / ".bench-tuner")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    methods = [name.strip() for name in options.methods.split(",") if name.strip()]
    unknown = [name for name in methods if name not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method {unknown[0]}; use {', '.join(METHODS)}")
    options.work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    base_store(options.work, options.frames)
    print(f"base store: {time.monotonic() - started:.0f} s", file=sys.stderr)
    results: dict[str, dict[str, Any]] = {}
    for method in methods:
        found = run_method(options.work, method, options.iterations, options.frames, options.seed)
        summary = found["summary"]
        curve = best_so_far(summary)
        ordered = sorted(summary["iterations"], key=lambda item: item["iteration"])
        values = [entry["bd_rate"] for entry in ordered]
        results[method] = {
            "seed_bd_rate": summary["start_bd_rate_vs_x264"],
            "best_so_far": curve,
            "bd_rates": values,
            "failures": summary["failures"],
            "seconds": round(found["seconds"], 1),
        }
        print(
            f"{method}: best {curve[-1] if curve else None} after {len(curve)} evaluations, "
            f"failures {summary['failures']}, {found['seconds']:.0f} s",
            file=sys.stderr,
        )
    if options.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results, options.iterations)


if __name__ == "__main__":
    main()
