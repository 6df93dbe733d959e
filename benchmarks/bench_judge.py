"""Does the held-out set rank codecs as natural video does? Per stored candidate, its mean
BD-rate vs x264 on the training clip, on the held-out set and on the natural clips.

Run as ``python benchmarks/bench_judge.py --db STORE [--candidates 3,5,9] [--frames N]
[--qualities 20,40,60,80] [--json]``. It reads the candidates of STORE (an evolve run's
store, read only; at least ten for a rank correlation that means something) and scores each
with the lab's own ``score_clips`` (sandbox runs, the lab's metrics, BD-rate on PSNR-Y
against the ladder's anchor, x264) on three groups of clips: the training clip
(``--training``, default ``builtin:default``), the default held-out set (``builtin:still``,
``builtin:shake``, ``builtin:bikes`` at the windows evolve and adopt use) and the natural
clips of ``../shared/media`` at the windows its README recommends (those bench_seeds.py
uses). It prints each group's mean per candidate and the Spearman rank correlation of
training -> natural and held-out -> natural over the candidates scored on every clip.
Runs and ladders go to a store of its own (``benchmarks/.bench-judge.db``, kept between
runs so a re-run encodes only what changed), never into STORE.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean

from bench_seeds import CLIPS, MEDIA_DIR, load_spec
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from scipy.stats import spearmanr

from aicodec.cli.common import make_settings, print_json
from aicodec.clips import BUILTIN_NAME, HELD_OUT_BUILTINS, Clip, held_out_window, load_clip
from aicodec.errors import AicodecError, ConfigError, SandboxError, ValidationError
from aicodec.ladder import load_ladder
from aicodec.scoring.candidate import parse_qualities, score_clips
from aicodec.settings import Settings
from aicodec.store import Store
from aicodec.store.queries.candidates import candidate_ids, stored_candidates

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WORK_DB = ROOT / "benchmarks" / ".bench-judge.db"
GROUPS = ("training", "held_out", "natural")
ENOUGH_CANDIDATES = 10  # fewer, and a rank correlation says little


@dataclass
class Row:
    """One candidate: its BD-rate vs x264 per clip (percent; None where undefined) and the
    mean per group, or why it could not be scored."""

    candidate: int
    name: str
    origin: str
    bd_rate: dict[str, float | None] = field(default_factory=dict)
    means: dict[str, float | None] = field(default_factory=dict)
    error: str | None = None


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="the store whose candidates are judged")
    parser.add_argument("--candidates", help="comma list of candidate ids (default: all)")
    parser.add_argument("--training", default=BUILTIN_NAME, help="the training clip")
    parser.add_argument("--qualities", help="comma list of qualities (default 20,40,60,80)")
    parser.add_argument(
        "--frames", type=int, help="cut every clip to its window's first N frames (quick look)"
    )
    parser.add_argument(
        "--work-db",
        default=str(DEFAULT_WORK_DB),
        help="store of this benchmark's runs and ladders (default benchmarks/.bench-judge.db)",
    )
    parser.add_argument(
        "--media", type=Path, default=MEDIA_DIR, help="the media folder (default ../shared/media)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser.parse_args(argv)


def capped(count: int | None, frames: int | None) -> int | None:
    """A window's frame count cut to ``frames`` when given (None: to the clip's end)."""
    if frames is None:
        return count
    return frames if count is None else min(count, frames)


def judge_clips(
    args: argparse.Namespace, settings: Settings, err: Console
) -> dict[str, list[Clip]]:
    """The clips of each group, each cut to ``--frames`` when given; media files that are
    absent are said and left out."""
    training = [load_clip(args.training, settings, count=capped(None, args.frames))]
    held_out = []
    for name in HELD_OUT_BUILTINS:
        start, count = held_out_window(name, 0, None)
        held_out.append(load_clip(name, settings, start=start, count=capped(count, args.frames)))
    natural = []
    for spec in CLIPS:
        if spec.file is None:
            continue
        if not (args.media / spec.file).is_file():
            err.print(f"[yellow]skipped[/yellow] {escape(str(args.media / spec.file))}: absent")
            continue
        natural.append(load_spec(spec, args.media, settings, args.frames))
    if not natural:
        raise ConfigError(f"no natural clip in {args.media}: nothing to judge against")
    return {"training": training, "held_out": held_out, "natural": natural}


def chosen_ids(text: str | None, stored: list[int]) -> list[int]:
    """The candidate ids a comma list names (all stored ones when None); ConfigError for an
    id the store does not hold."""
    if text is None:
        return stored
    try:
        wanted = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--candidates {text!r} is not a comma list of ids") from None
    unknown = sorted(set(wanted) - set(stored))
    if unknown or not wanted:
        named = ", ".join(map(str, unknown)) or repr(text)
        raise ConfigError(f"no stored candidate {named} in --db")
    return wanted


def group_mean(values: list[float | None]) -> float | None:
    """The mean of a group's BD-rates (percent); None unless every one is defined."""
    if not values or any(value is None for value in values):
        return None
    return fmean(value for value in values if value is not None)


def rank_correlation(rows: list[Row], first: str, second: str) -> float | None:
    """Spearman's rho between two groups' means over the candidates with both; None with
    fewer than two such candidates or when either group gives them all one value."""
    pairs = [
        (row.means[first], row.means[second])
        for row in rows
        if row.means.get(first) is not None and row.means.get(second) is not None
    ]
    if len(pairs) < 2 or len({a for a, _ in pairs}) < 2 or len({b for _, b in pairs}) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the p-value of two points; rho is all we print
        rho = spearmanr([a for a, _ in pairs], [b for _, b in pairs]).statistic
    return round(float(rho), 6)


def score_row(
    candidate: tuple[int, str, str, str],
    groups: dict[str, list[Clip]],
    store: Store,
    settings: Settings,
    qualities: list[int],
) -> Row:
    """Score one candidate on every clip (one pool) and take its BD-rate vs the anchor."""
    candidate_id, name, origin, source = candidate
    row = Row(candidate_id, name, origin)
    ladder = load_ladder(settings.ladder_file)
    anchor = ladder.select([ladder.anchor])[0].name
    clips = [clip for group in GROUPS for clip in groups[group]]
    try:
        outcomes = score_clips(
            source, name, clips, store, settings, ladder, qualities, encoders=[anchor]
        )
    except (SandboxError, ValidationError) as exc:
        row.error = str(exc)
        return row
    rates = iter([outcome.bd_rate_vs.get(anchor) for outcome in outcomes])  # in clip order
    for group in GROUPS:
        values = [next(rates) for _ in groups[group]]
        row.bd_rate.update(zip([clip.name for clip in groups[group]], values, strict=True))
        row.means[group] = group_mean(values)
    return row


def shown(value: float | None) -> str:
    """A BD-rate for the table (percent, signed; n/a when undefined)."""
    return "n/a" if value is None else f"{value:+.1f} %"


def render(out: Console, rows: list[Row], correlations: dict[str, float | None]) -> None:
    """The table of candidates and the two rank correlations."""
    table = Table(title="Mean BD-rate vs x264 (PSNR-Y; lower is better)")
    for column in ("candidate", "name", "origin", "training", "held-out", "natural"):
        table.add_column(column, justify="right" if column == "candidate" else "left")
    for row in rows:
        cells = [shown(row.means.get(group)) for group in GROUPS]
        if row.error is not None:
            cells = ["failed", escape(row.error[:60]), ""]
        table.add_row(str(row.candidate), escape(row.name), row.origin, *cells)
    out.print(table)
    for pair, rho in correlations.items():
        text = "n/a (needs two candidates with distinct means)" if rho is None else f"{rho:+.3f}"
        out.print(f"Spearman rank correlation, {pair}: {text}")


def run(args: argparse.Namespace, argv: list[str], out: Console, err: Console) -> int:
    """The benchmark; returns the exit status."""
    settings = make_settings(db=args.work_db)
    qualities = parse_qualities(args.qualities)
    if args.frames is not None and args.frames < 1:
        raise ConfigError(f"--frames must be 1 or more, got {args.frames}")
    judged = Store(make_settings(db=args.db).db, read_only=True)
    try:
        ids = chosen_ids(args.candidates, candidate_ids(judged))
        with judged.session() as session:
            found = stored_candidates(session, ids)
    finally:
        judged.close()
    if len(ids) < ENOUGH_CANDIDATES:
        err.print(
            f"[yellow]note[/yellow]: {len(ids)} candidates; a rank correlation over fewer "
            f"than {ENOUGH_CANDIDATES} says little"
        )
    groups = judge_clips(args, settings, err)
    if not args.json:
        out.print(f"command: {shlex.join(['python', os.path.relpath(argv[0]), *argv[1:]])}")
        for group in GROUPS:
            for clip in groups[group]:
                frames = clip.frames
                out.print(
                    f"{group}: {clip.name}, frames {clip.start}+{frames.count}, "
                    f"{frames.width}x{frames.height}, {float(frames.fps):.3f} fps"
                )
    rows: list[Row] = []
    store = Store(settings.db)
    try:
        for number, candidate_id in enumerate(ids, start=1):
            record = found[candidate_id]
            err.print(f"[{number}/{len(ids)}] candidate {candidate_id} ({escape(record.name)})")
            candidate = (candidate_id, record.name, record.origin, record.source)
            rows.append(score_row(candidate, groups, store, settings, qualities))
    finally:
        store.close()
    correlations = {
        "training -> natural": rank_correlation(rows, "training", "natural"),
        "held-out -> natural": rank_correlation(rows, "held_out", "natural"),
    }
    if args.json:
        print_json(
            {
                "qualities": qualities,
                "clips": {g: [clip.describe() for clip in groups[g]] for g in GROUPS},
                "candidates": [vars(row) for row in rows],
                "spearman": correlations,
            }
        )
    else:
        render(out, rows, correlations)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the benchmark; lab errors are one line and a non-zero status."""
    argv = list(sys.argv if argv is None else ["benchmarks/bench_judge.py", *argv])
    args = parse_args(argv[1:])
    out = Console(highlight=False, emoji=False, width=None if sys.stdout.isatty() else 200)
    err = Console(stderr=True, highlight=False, emoji=False)
    try:
        return run(args, argv, out, err)
    except AicodecError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]; what finished is in the benchmark's store")
        return 130


if __name__ == "__main__":
    sys.exit(main())
