"""The cheap first stage held against the full evaluation, on a recorded evolve run.

Run as ``python benchmarks/bench_screen.py --db STORE [--run ID] [--frames N] [--json]``
on a store whose run scored its candidates fully (record one with the first stage off):

    AICODEC_EVOLVE_SCREEN_FRAMES=0 aicodec evolve --iterations 12 --frames 24 \\
        --holdout none --db /tmp/rec.db --git-repo /tmp/rec-codecs

For every scored iteration it runs the candidate and its parent on the first N frames of
the run's training clips at the run's lowest and highest quality (the first stage: the
lab's own sandbox and metrics; stored runs are reused) and prints, beside the iteration's
full BD-rate vs its parent (PSNR-Y, percent):

- the first stage's figure (percent more bits than the parent at equal PSNR-Y) and its
  gap to the full BD-rate: the noise the stop limit must stand above;
- the largest first-stage figure of a candidate the full evaluation found better than
  its parent (BD-rate below 0), and of one it would have adopted (below -threshold): the
  limit (``AICODEC_EVOLVE_SCREEN_STOP_PERCENT``) must lie above both;
- the cost: sandbox seconds (encode and decode calls) of a candidate's first stage against
  its full evaluation, from the stored runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from aicodec.clips.records import record_clip
from aicodec.evolution.config import EvolveConfig
from aicodec.evolution.context import RunContext, load_run_clips, screen_clips
from aicodec.evolution.stages import screen_figure
from aicodec.generation.generate import select_provider
from aicodec.ladder import load_ladder
from aicodec.settings import Settings
from aicodec.store import EvolutionRun, RunRecord, Store
from aicodec.store.queries.runs import iteration_rows


def sandbox_seconds(store: Store, candidate_id: int, clip_ids: list[int]) -> float:
    """Encode and decode call seconds of a candidate's stored runs on these clips."""
    with store.session() as session:
        total = session.scalar(
            select(
                func.coalesce(func.sum(RunRecord.encode_seconds), 0.0)
                + func.coalesce(func.sum(RunRecord.decode_seconds), 0.0)
            ).where(
                RunRecord.candidate_id == candidate_id,
                RunRecord.clip_id.in_(clip_ids),
                RunRecord.status == "ok",
            )
        )
    return float(total or 0.0)


def run_context(store: Store, settings: Settings, run_id: int, frames: int) -> RunContext:
    """The recorded run's context, its first stage set to ``frames`` frames."""
    with store.session() as session:
        run = session.get(EvolutionRun, run_id) if run_id else None
        if run is None:
            run = session.scalars(select(EvolutionRun).order_by(EvolutionRun.id.desc())).first()
        if run is None:
            raise SystemExit("the store holds no evolve run")
        config = EvolveConfig.from_json(run.config_json, settings)
        run_id, batch, start = run.id, run.batch, run.start_parent_id
    config.screen_frames = frames
    clips = load_run_clips(store, settings, config)
    if not screen_clips(config, clips.training):
        raise SystemExit(f"the run's training clips are not longer than {frames} frames")
    provider, _ = select_provider(settings, "mutation", seed=0, store=store)
    ladder = load_ladder(settings.ladder_file)
    return RunContext(
        store, settings, config, run_id, batch, ladder, clips, provider, "bench", start
    )


def measure(db: Path, run_id: int, frames: int) -> dict[str, Any]:
    """The first stage's figure, its gap to the full BD-rate and its cost, per iteration."""
    settings = Settings()
    store = Store(str(db))
    try:
        run = run_context(store, settings, run_id, frames)
        rows = []
        for row in iteration_rows(store, run.run_id):
            if row.status != "scored" or row.candidate_id is None or row.parent_id is None:
                continue
            figure = screen_figure(run, row.candidate_id, row.parent_id)
            rows.append(
                {
                    "iteration": row.number,
                    "candidate": row.candidate_id,
                    "full_bd_rate_vs_parent": row.bd_rate_vs_parent,
                    "screen": figure,
                }
            )
        screen_clip_ids = [record_clip(store, clip) for clip in run.clips.screen]
        for entry in rows:
            entry["screen_seconds"] = sandbox_seconds(store, entry["candidate"], screen_clip_ids)
            entry["full_seconds"] = sandbox_seconds(
                store, entry["candidate"], run.clips.training_ids
            )
        return summarise(rows, run.config.threshold, frames, len(run.clips.screen))
    finally:
        store.close()


def summarise(
    rows: list[dict[str, Any]], threshold: float, frames: int, clips: int
) -> dict[str, Any]:
    """The figures over the iterations."""
    pairs = [row for row in rows if row["screen"] is not None]
    gaps = [row["screen"] - row["full_bd_rate_vs_parent"] for row in pairs]
    better = [row["screen"] for row in pairs if row["full_bd_rate_vs_parent"] < 0]
    adopted = [row["screen"] for row in pairs if row["full_bd_rate_vs_parent"] < -threshold]
    costs = [row["screen_seconds"] / row["full_seconds"] for row in rows if row["full_seconds"]]
    return {
        "frames": frames,
        "clips": clips,
        "iterations": rows,
        "gap_mean": statistics.fmean(gaps) if gaps else None,
        "gap_stdev": statistics.stdev(gaps) if len(gaps) > 1 else None,
        "gap_worst": max(gaps, key=abs) if gaps else None,
        "largest_screen_of_a_better_codec": max(better) if better else None,
        "largest_screen_of_an_adoptable_codec": max(adopted) if adopted else None,
        "cost_share_mean": statistics.fmean(costs) if costs else None,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--run", type=int, default=0)
    parser.add_argument("--frames", type=int, default=Settings().evolve_screen_frames)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures = measure(args.db, args.run, args.frames)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"first stage: {figures['frames']} frames of {figures['clips']} clip(s)")
    for row in figures["iterations"]:
        screen = "n/a" if row["screen"] is None else f"{row['screen']:+7.2f} %"
        share = row["screen_seconds"] / row["full_seconds"] if row["full_seconds"] else 0.0
        print(
            f"  #{row['iteration']:<3} candidate {row['candidate']:<4} full vs parent "
            f"{row['full_bd_rate_vs_parent']:+7.2f} %  first stage {screen}  cost {share:.0%}"
        )
    for key in (
        "gap_mean",
        "gap_stdev",
        "gap_worst",
        "largest_screen_of_a_better_codec",
        "largest_screen_of_an_adoptable_codec",
        "cost_share_mean",
    ):
        value = figures[key]
        print(f"{key}: {'n/a' if value is None else f'{value:+.3f}'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
