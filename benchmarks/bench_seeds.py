"""The seed-codec table: BD-rate of every seed against the standard encoders, on real clips.

Run as ``python benchmarks/bench_seeds.py [--seeds hybrid,motion_dct] [--clips builtin,carphone]
[--json]`` (``make bench`` runs it whole). Every seed in ``baselines/seeds/*.py`` is scored
exactly as ``aicodec score`` scores it (the same library call: sandbox run, the lab's metrics,
the ladder from the store, BD-rate on PSNR-Y) on the built-in clip and on each clip of
``../shared/media`` at the window its README recommends. The table gives, per clip and seed,
the BD-rate against each chosen encoder and the seed's encode and decode seconds (the
sandbox's measured call times, summed over the qualities). Baselines and runs are kept in a
store of their own (``benchmarks/.bench.db`` by default), so a re-run encodes only what
changed: a seed whose code hash already has runs on a clip at these qualities is not run
again (its stored timings are shown, marked ``stored``).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from aicodec import __version__
from aicodec.candidates import code_hash, read_candidate
from aicodec.cli.common import make_settings, print_json
from aicodec.clips import Clip, load_clip
from aicodec.errors import (
    AicodecError,
    BDRateError,
    ConfigError,
    SandboxError,
    ValidationError,
)
from aicodec.ffmpeg import ffmpeg_version
from aicodec.ladder import LadderProgress, LadderResult, load_ladder, run_ladder
from aicodec.sandbox.runner import isolation_mode
from aicodec.scoring.bdrate import RDPoint, bd_compare
from aicodec.scoring.candidate import ScoreOutcome, parse_qualities, score_candidate
from aicodec.store import Store

ROOT = Path(__file__).resolve().parents[1]
SEEDS_DIR = ROOT / "baselines" / "seeds"
MEDIA_DIR = ROOT.parent / "shared" / "media"
DEFAULT_DB = ROOT / "benchmarks" / ".bench.db"
DEFAULT_ENCODERS = "x264,x265,svtav1,vvenc"


@dataclass(frozen=True)
class ClipSpec:
    """A benchmark clip: a file in the media folder (None: the built-in clip) and its window."""

    key: str
    file: str | None
    start: int
    frames: int | None
    fps: str | None = None
    note: str = ""


# The windows recommended by ../shared/media/README.md.
CLIPS = (
    ClipSpec("builtin", None, 0, None),
    ClipSpec("carphone", "carphone_qcif.mp4", 0, 120),
    ClipSpec(
        "foreman",
        "foreman_cif25.264",
        170,
        60,
        fps="25",
        note="the pan; --fps 25 given explicitly (the raw stream carries no rate)",
    ),
    ClipSpec("cereus", "cereus_flower_foliage_720p30.264", 121, 60),
    ClipSpec("tears", "tears_of_steel_battle_800x332.webm", 605, 60),
)


@dataclass
class Row:
    """One seed on one clip: its BD-rates and timings, or the reason it failed."""

    clip: str
    seed: str
    code_hash: str
    bd_rate_vs: dict[str, float | None] = field(default_factory=dict)
    overlap_psnr: dict[str, float] = field(default_factory=dict)
    encode_seconds: float | None = None
    decode_seconds: float | None = None
    reused: bool = False
    wall_seconds: float = 0.0
    points: list[dict[str, object]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready row."""
        return dict(vars(self))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", help="comma list of seeds (file stems); default: every seed")
    parser.add_argument(
        "--clips",
        help=f"comma list of clips: {', '.join(spec.key for spec in CLIPS)} (default: all)",
    )
    parser.add_argument(
        "--encoders",
        default=DEFAULT_ENCODERS,
        help=f"ladder encoders to compare with (default {DEFAULT_ENCODERS}; the anchor always)",
    )
    parser.add_argument(
        "--qualities", help="comma list of qualities (default: the lab's, 20,40,60,80)"
    )
    parser.add_argument(
        "--frames",
        type=int,
        help="cut every clip to its window's first N frames (for a quick look, not the table)",
    )
    parser.add_argument(
        "--db",
        default=str(DEFAULT_DB),
        help="store of baselines and runs, kept between runs (default benchmarks/.bench.db)",
    )
    parser.add_argument(
        "--seeds-dir",
        type=Path,
        default=SEEDS_DIR,
        help="the folder whose *.py codecs are the seeds (default baselines/seeds)",
    )
    parser.add_argument(
        "--media", type=Path, default=MEDIA_DIR, help="the media folder (default ../shared/media)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser.parse_args(argv)


def pick(text: str | None, known: list[str], what: str) -> list[str]:
    """The names chosen from ``known`` by a comma list (all when None), in ``known``'s order."""
    if text is None:
        return list(known)
    wanted = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in known]
    if unknown or not wanted:
        named = ", ".join(unknown) or repr(text)
        raise ConfigError(f"unknown {what} {named}; known: {', '.join(known)}")
    return [name for name in known if name in wanted]


def machine(settings: Any) -> dict[str, object]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {
        "cpu": cpu,
        "cores": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "aicodec": __version__,
        "commit": commit,
        "ffmpeg": ffmpeg_version(),
        "isolation": isolation_mode(settings),
    }


def load_spec(spec: ClipSpec, media: Path, settings: Any, frames: int | None) -> Clip:
    """The clip of a benchmark entry, cut to ``frames`` when given."""
    count = spec.frames if frames is None else min(frames, spec.frames or frames)
    source = None if spec.file is None else media / spec.file
    return load_clip(source, settings, start=spec.start, count=count, fps=spec.fps)


def clip_line(key: str, clip: Clip, spec: ClipSpec) -> str:
    """One line saying which frames a table row is about."""
    frames = clip.frames
    where = "the built-in clip" if spec.file is None else spec.file
    note = f" ({spec.note})" if spec.note else ""
    return (
        f"{key}: {where}, frames {clip.start}+{frames.count}, {frames.width}x{frames.height}, "
        f"{float(frames.fps):.3f} fps{note}"
    )


def score_row(
    key: str,
    seed: Path,
    source: str,
    clip: Clip,
    store: Store,
    settings: Any,
    ladder: Any,
    baselines: LadderResult,
    qualities: list[int],
    status: Callable[[str], None],
) -> Row:
    """Score one seed on one clip as ``aicodec score`` does; a failing seed is a row with
    its error, not an exception."""
    row = Row(key, seed.stem, code_hash(source))
    started = time.perf_counter()
    try:
        outcome: ScoreOutcome = score_candidate(
            source,
            seed.name,
            clip,
            store,
            settings,
            ladder,
            qualities,
            encoders=list(baselines.encoders),
            progress=lambda text: status(f"{key}: {seed.stem}: {text}"),
        )
    except (SandboxError, ValidationError) as exc:
        row.error = str(exc)
        return row
    finally:
        row.wall_seconds = time.perf_counter() - started
    row.bd_rate_vs = dict(outcome.bd_rate_vs)
    row.encode_seconds = sum(point.encode_seconds for point in outcome.points)
    row.decode_seconds = sum(point.decode_seconds for point in outcome.points)
    row.reused = outcome.reused
    row.points = [point.to_dict() for point in outcome.points]
    row.warnings = list(outcome.warnings)
    # the share of the PSNR-Y range both curves cover, behind score_candidate's overlap warnings
    curve = [RDPoint(point.kbps, point.psnr_y) for point in outcome.points]
    for name, anchor in baselines.encoders.items():
        try:
            bd = bd_compare(
                anchor.rd_points(),
                curve,
                method=settings.bd_method,
                min_overlap=settings.bd_min_overlap,
            )
        except BDRateError:
            continue
        row.overlap_psnr[name] = bd.overlap_psnr
    return row


def percent(value: float | None) -> str:
    """A BD-rate cell."""
    return "undefined" if value is None else f"{value:+.1f} %"


OVERLAP_WARNING = "PSNR-Y overlap with"  # score_candidate's warning that row_notes shows
NOTES = (
    "BD-rate < 0: the seed needs fewer bits than that encoder at equal PSNR-Y.",
    "enc s / dec s: the encode call and the faster of the two decode calls inside the sandbox,",
    "  summed over the qualities (Python start-up excluded).",
    "stored: a run of the same code hash, clip and qualities was reused from the store, with",
    "  the times measured then. code: the start of the seed's code hash.",
)


def row_notes(row: Row, min_overlap: float) -> list[str]:
    """The note cell: a reused run, and a PSNR-Y overlap below the BD warning threshold."""
    notes = ["stored"] if row.reused else []
    low = [value for value in row.overlap_psnr.values() if value < min_overlap]
    if low:
        lo, hi = round(100 * min(low)), round(100 * max(low))
        notes.append(f"overlap {lo} %" if lo == hi else f"overlap {lo}-{hi} %")
    return notes


def render(
    out: Console,
    rows: list[Row],
    encoders: list[str],
    clip_lines: list[str],
    skipped: list[str],
    settings: Any,
) -> None:
    """The table of every seed on every clip, with the clips it covers."""
    method, min_overlap = settings.bd_method, settings.bd_min_overlap
    table = Table(title=f"BD-rate of each seed (PSNR-Y, {method}); seconds summed over qualities")
    table.add_column("clip")
    table.add_column("seed")
    table.add_column("code")
    for name in encoders:
        table.add_column(f"vs {name}", justify="right")
    table.add_column("enc s", justify="right")
    table.add_column("dec s", justify="right")
    table.add_column("note")
    for index, row in enumerate(rows):
        first = index == 0 or rows[index - 1].clip != row.clip
        last = index == len(rows) - 1 or rows[index + 1].clip != row.clip
        if row.error is not None:
            cells = ["failed"] * len(encoders) + ["-", "-", "see below"]
        else:
            cells = [percent(row.bd_rate_vs.get(name)) for name in encoders]
            cells += [f"{row.encode_seconds:.1f}", f"{row.decode_seconds:.1f}"]
            cells += [", ".join(row_notes(row, min_overlap))]
        table.add_row(
            row.clip if first else "", row.seed, row.code_hash[:8], *cells, end_section=last
        )
    out.print(table)
    for line in clip_lines:
        out.print(f"  {escape(line)}", soft_wrap=True)
    for line in skipped:
        out.print(f"  skipped {escape(line)}", soft_wrap=True)
    for row in rows:
        for warning in row.warnings:
            if not warning.startswith(OVERLAP_WARNING):  # those are the overlap notes
                out.print(f"  warning: {row.clip}: {row.seed}: {escape(warning)}", soft_wrap=True)
    for line in NOTES:
        out.print(line, soft_wrap=True)
    out.print(
        f"overlap: where below {min_overlap:.0%}, the share of the PSNR-Y range that the seed's "
        "curve and an\n  encoder's both cover (the BD-rate averages over that part only).",
        soft_wrap=True,
    )


def ladder_status(key: str, status: Callable[[str], None]) -> Callable[[LadderProgress], None]:
    """A ladder progress callback that shows which baseline is being encoded."""

    def on_event(event: LadderProgress) -> None:
        rate = "" if event.rate_value is None else f" {event.rate_option} {event.rate_value}"
        state = "done" if event.finished else "stored" if event.cached else "encoding"
        status(f"{key}: baseline {event.encoder}{rate} ({state})")

    return on_event


def print_header(out: Console, header: dict[str, Any]) -> None:
    """The command line and the machine, so that the figures can be reproduced."""
    info = header["machine"]
    out.print(f"command: {header['command']}", soft_wrap=True)
    out.print(
        f"machine: {info['cores']} cores ({info['cpu']}), {info['platform']}, Python "
        f"{info['python']}, aicodec {info['aicodec']} at {info['commit'] or '?'}, "
        f"ffmpeg {info['ffmpeg']}, sandbox {info['isolation']}",
        soft_wrap=True,
    )
    qualities = ",".join(map(str, header["qualities"]))
    out.print(f"qualities {qualities}; store {header['store']}", soft_wrap=True)


def progress_line(row: Row, anchor: str, min_overlap: float) -> str:
    """The line printed on stderr when a seed has been scored on a clip."""
    if row.error is not None:
        return f"{row.clip}: {row.seed}: [red]failed[/red] ({row.wall_seconds:.0f} s wall)"
    extra = ", stored run" if row.reused else ""
    extra += "".join(f", {note}" for note in row_notes(row, min_overlap) if note != "stored")
    return (
        f"{row.clip}: {row.seed}: {percent(row.bd_rate_vs.get(anchor))} vs {anchor}, encode "
        f"{row.encode_seconds:.1f} s, decode {row.decode_seconds:.1f} s "
        f"({row.wall_seconds:.0f} s wall{extra})"
    )


def run(args: argparse.Namespace, argv: list[str], out: Console, err: Console) -> int:
    """The benchmark; returns the exit status."""
    settings = make_settings(db=args.db)
    seeds = {path.stem: path for path in sorted(args.seeds_dir.glob("*.py"))}
    if not seeds:
        raise ConfigError(f"{args.seeds_dir} holds no *.py codec")
    chosen_seeds = pick(args.seeds, list(seeds), "seed")
    # read once: every clip scores the same code, even when a seed file is edited meanwhile
    sources = {name: read_candidate(seeds[name]) for name in chosen_seeds}
    chosen_clips = pick(args.clips, [spec.key for spec in CLIPS], "clip")
    qualities = parse_qualities(args.qualities)
    if args.frames is not None and args.frames < 1:
        raise ConfigError(f"--frames must be 1 or more, got {args.frames}")
    ladder = load_ladder(settings.ladder_file)
    names = [name.strip() for name in args.encoders.split(",") if name.strip()]
    encoders = [spec.name for spec in ladder.select(names)]
    header = {
        "command": shlex.join(["python", os.path.relpath(argv[0]), *argv[1:]]),
        "machine": machine(settings),
        "qualities": qualities,
        "encoders": encoders,
        "store": settings.db,
    }
    if not args.json:
        print_header(out, header)
    present: list[ClipSpec] = []
    skipped: list[str] = []
    for spec in CLIPS:
        if spec.key not in chosen_clips:
            continue
        if spec.file is not None and not (args.media / spec.file).is_file():
            skipped.append(f"{spec.key}: {args.media / spec.file} is absent")
            err.print(f"[yellow]skipped[/yellow] {escape(skipped[-1])}", soft_wrap=True)
        else:
            present.append(spec)

    rows: list[Row] = []
    clips: list[dict[str, object]] = []
    clip_lines: list[str] = []
    store = Store(settings.db)
    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} runs"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task("starting", total=len(present) * len(chosen_seeds))

            def status(text: str) -> None:
                bar.update(task, description=escape(text))

            for spec in present:
                status(f"{spec.key}: loading")
                clip = load_spec(spec, args.media, settings, args.frames)
                clips.append({"key": spec.key, "note": spec.note, **clip.describe()})
                clip_lines.append(clip_line(spec.key, clip, spec))
                baselines = run_ladder(
                    clip,
                    store,
                    settings,
                    ladder,
                    encoders=encoders,
                    progress=ladder_status(spec.key, status),
                )
                for name in chosen_seeds:
                    status(f"{spec.key}: {name}")
                    row = score_row(
                        spec.key,
                        seeds[name],
                        sources[name],
                        clip,
                        store,
                        settings,
                        ladder,
                        baselines,
                        qualities,
                        status,
                    )
                    rows.append(row)
                    bar.advance(task)
                    line = progress_line(row, encoders[0], settings.bd_min_overlap)
                    err.print(line, soft_wrap=True)
    finally:
        store.close()

    if args.json:
        print_json(
            {
                **header,
                "clips": clips,
                "skipped": skipped,
                "results": [row.to_dict() for row in rows],
            }
        )
    else:
        render(out, rows, encoders, clip_lines, skipped, settings)
    failed = [row for row in rows if row.error is not None]
    for row in failed:
        line = f"seed {row.seed} failed on {row.clip}: {row.error}"
        err.print(f"[red]error:[/red] {escape(line)}", soft_wrap=True)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Parse options, run the benchmark; lab errors are one line and a non-zero status."""
    argv = list(sys.argv if argv is None else ["benchmarks/bench_seeds.py", *argv])
    args = parse_args(argv[1:])
    out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    err = Console(stderr=True, highlight=False)
    try:
        return run(args, argv, out, err)
    except AicodecError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]; what finished so far is in the store")
        return 130


if __name__ == "__main__":
    sys.exit(main())
