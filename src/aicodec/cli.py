"""The ``aicodec`` command line: parses options, calls the library, renders with Rich."""

from __future__ import annotations

import json
import math
import os
import shlex
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Annotated, Any, TextIO, TypeVar, cast

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from aicodec import __version__
from aicodec.errors import AicodecError, ConfigError
from aicodec.safe_text import printable
from aicodec.settings import Settings, load_settings

app = typer.Typer(
    help="aicodec: a lab for autonomous video-codec research with honest measurements.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

T = TypeVar("T")

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db", help="Store URL or SQLite path \\[env AICODEC_DB; default experiments.db]."
    ),
]
VideoOption = Annotated[
    Path | None,
    typer.Option(
        "--video",
        help="Video file (any format ffmpeg reads) or a built-in clip, builtin:default, "
        "builtin:still or builtin:shake; default: builtin:default.",
    ),
]
StartOption = Annotated[int, typer.Option("--start", help="First frame of the window.")]
FramesOption = Annotated[
    int | None, typer.Option("--frames", help="Number of frames in the window (default: all).")
]
SizeOption = Annotated[str | None, typer.Option("--size", help="WxH, required for raw .yuv.")]
FpsOption = Annotated[
    str | None,
    typer.Option(
        "--fps",
        help="Frame rate (30, 29.97, 30000/1001); required for raw .yuv, "
        "overrides the file's rate otherwise.",
    ),
]
ConvertOption = Annotated[
    bool,
    typer.Option("--convert", help="Convert 10-bit, 4:2:2, 4:4:4 or RGB sources to 8-bit 4:2:0."),
]
VmafOption = Annotated[bool, typer.Option("--vmaf", help="Also measure VMAF (vmaf_v0.6.1).")]
JobsOption = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        help="Sandbox jobs and ladder encodes at once \\[env AICODEC_JOBS; "
        "default one per core, at most 4 with --device cuda].",
        show_default=False,
    ),
]
ExecutorOption = Annotated[
    str | None,
    typer.Option(
        "--executor",
        help="Where sandbox jobs and ladder encodes run: local "
        "(default) or ray (a Ray cluster; pip install 'aicodec\\[ray]') "
        "\\[env AICODEC_EXECUTOR].",
        show_default=False,
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="With --executor ray: HOST:PORT of the cluster's head, "
        "or local to start one in this process \\[env RAY_ADDRESS; default local].",
        show_default=False,
    ),
]
PricesOption = Annotated[
    Path | None,
    typer.Option(
        "--prices",
        help="TOML price table merged over the built-in one, for models "
        "it lacks (\\[models.NAME] input, output: USD per million tokens) "
        "\\[env AICODEC_PRICES_FILE].",
        show_default=False,
    ),
]
DeviceOption = Annotated[
    str | None,
    typer.Option("--device", help="cpu (default) or cuda: the device a torch codec may use."),
]


def print_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout (non-finite numbers become null)."""
    from aicodec.scoring.metrics import json_safe

    sys.stdout.write(json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n")


def shown(text: object, limit: int | None = None) -> str:
    """Text for a Rich line or cell, its control characters escaped, then its markup;
    ``limit`` cuts the escaped text (never a markup escape) to that many characters."""
    visible = printable(str(text))
    return escape(visible if limit is None else visible[:limit])


def guarded(action: Callable[[], T]) -> T:
    """Run a command body; any lab error becomes one red line on stderr and a non-zero exit."""
    try:
        return action()
    except typer.Exit:
        raise
    except AicodecError as exc:
        err.print(f"[red]error:[/red] {shown(str(exc))}", soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]; everything finished so far is in the store")
        raise typer.Exit(130) from None
    except Exception as exc:  # last line of defence: never a traceback for the user
        if os.environ.get("AICODEC_DEBUG"):
            raise
        err.print(
            f"[red]internal error:[/red] {type(exc).__name__}: {shown(str(exc))} "
            "(set AICODEC_DEBUG=1 to see the traceback)",
            soft_wrap=True,
        )
        raise typer.Exit(70) from None


def make_settings(**overrides: object) -> Settings:
    """Settings from defaults, environment and CLI options; a bad value is a ConfigError."""
    from pydantic import ValidationError

    try:
        return load_settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"setting {where}: {first['msg']}") from None


def fmt(value: float | None, digits: int = 2) -> str:
    """A number for a table cell: fixed digits, 'inf' or '-'."""
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"aicodec {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Show version."),
    ] = False,
) -> None:
    """aicodec: a lab for autonomous video-codec research with honest measurements."""


@app.command("clip")
def clip_command(
    video: VideoOption = None,
    start: StartOption = 0,
    frames: FramesOption = None,
    size: SizeOption = None,
    fps: FpsOption = None,
    convert: ConvertOption = False,
    as_json: JsonOption = False,
) -> None:
    """Load a clip and show its size, frame count, frame rate and content hash."""

    def body() -> None:
        settings = make_settings()
        clip = load_window(
            settings, video, start=start, count=frames, size=size, fps=fps, convert=convert
        )
        info = clip.describe()
        if as_json:
            print_json(info)
            return
        table = Table(title=f"clip {clip.name}", show_header=False)
        for key, value in info.items():
            table.add_row(key, str(value))
        out.print(table)

    guarded(body)


@app.command("compare")
def compare_command(
    reference: Annotated[Path, typer.Argument(help="The original video.")],
    distorted: Annotated[Path, typer.Argument(help="The decoded (distorted) video.")],
    start: StartOption = 0,
    frames: FramesOption = None,
    size: SizeOption = None,
    fps: FpsOption = None,
    convert: ConvertOption = False,
    vmaf: VmafOption = False,
    weights: Annotated[
        str | None,
        typer.Option("--weights", help="PSNR-YUV weights Y,U,V \\[default 6,1,1]."),
    ] = None,
    per_frame: Annotated[
        bool, typer.Option("--per-frame", help="Also print the per-frame table.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Measure PSNR (Y, U, V, YUV), SSIM-Y and optionally VMAF of DISTORTED against REFERENCE."""

    def body() -> None:
        from aicodec.scoring.metrics import compare

        overrides: dict[str, object] = {}
        if weights is not None:
            overrides["psnr_yuv_weights"] = _parse_weights(weights)
        settings = make_settings(**overrides)
        window = dict(start=start, count=frames, size=size, fps=fps, convert=convert)
        ref = load_window(settings, reference, **window)
        dist = load_window(settings, distorted, **window)
        report = compare(ref.frames, dist.frames, settings=settings, with_vmaf=vmaf)
        if as_json:
            print_json(report.to_dict())
            return
        _render_quality(report, ref.name, dist.name, per_frame)

    guarded(body)


def _parse_weights(text: str) -> tuple[int, int, int]:
    """Parse ``6,1,1`` into PSNR-YUV weights."""
    parts = text.split(",")
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        raise ConfigError(f"--weights {text!r} must be three integers like 6,1,1") from None
    if len(values) != 3 or min(values) < 0 or sum(values) == 0:
        raise ConfigError(f"--weights {text!r} must be three non-negative integers, not all 0")
    return values


def _render_quality(report: Any, ref_name: str, dist_name: str, per_frame: bool) -> None:
    """Print the summary (and optionally per-frame) quality tables."""
    weights = ":".join(str(w) for w in report.weights)
    table = Table(title=f"{dist_name} against {ref_name}, {report.frames} frames")
    columns = ["PSNR-Y dB", "PSNR-U dB", "PSNR-V dB", f"PSNR-YUV {weights} dB", "SSIM-Y"]
    values = [report.psnr_y, report.psnr_u, report.psnr_v, report.psnr_yuv]
    cells = [fmt(value, 3) for value in values] + [fmt(report.ssim_y, 5)]
    if report.vmaf is not None:
        columns.append("VMAF")
        cells.append(fmt(report.vmaf, 3))
    for column in columns:
        table.add_column(column, justify="right")
    table.add_row(*cells)
    out.print(table)
    out.print(
        "PSNR per plane is 10*log10(255^2 / MSE) with MSE averaged over all frames; "
        f"PSNR-YUV weights Y:U:V = {weights}; SSIM-Y is the mean over frames "
        "(11x11 Gaussian window, sigma 1.5)."
    )
    if per_frame:
        frames_table = Table(title="per frame")
        for column in ["frame", "PSNR-Y", "PSNR-U", "PSNR-V", "PSNR-YUV", "SSIM-Y"]:
            frames_table.add_column(column, justify="right")
        for row in report.per_frame:
            frames_table.add_row(
                str(row.index),
                *(fmt(value, 3) for value in (row.psnr_y, row.psnr_u, row.psnr_v, row.psnr_yuv)),
                fmt(row.ssim_y, 5),
            )
        out.print(frames_table)


@app.command("bdrate")
def bdrate_command(
    anchor: Annotated[Path, typer.Argument(help="Anchor curve: CSV with kbps,psnr or JSON.")],
    test: Annotated[Path, typer.Argument(help="Test curve: CSV with kbps,psnr or JSON.")],
    method: Annotated[
        str | None,
        typer.Option("--method", help="Interpolation: pchip (JCT-VC/JVET), akima or cubic."),
    ] = None,
    min_overlap: Annotated[
        float | None,
        typer.Option("--min-overlap", help="Warn below this overlap fraction \\[default 0.75]."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Bjontegaard delta rate (percent) and delta PSNR (dB) of TEST against ANCHOR."""

    def body() -> None:
        from aicodec.scoring.bdrate import bd_compare, load_curve

        settings = make_settings(bd_method=method, bd_min_overlap=min_overlap)
        result = bd_compare(
            load_curve(anchor),
            load_curve(test),
            method=settings.bd_method,
            min_overlap=settings.bd_min_overlap,
        )
        for warning in result.warnings:
            err.print(f"[yellow]warning:[/yellow] {shown(warning)}", soft_wrap=True)
        if as_json:
            print_json(result.to_dict())
            return
        table = Table(title=f"{test.name} against {anchor.name} ({result.method})")
        for column in ["BD-rate %", "BD-PSNR dB", "PSNR overlap", "rate overlap"]:
            table.add_column(column, justify="right")
        table.add_row(
            fmt(result.bd_rate_percent, 3),
            fmt(result.bd_psnr_db, 3),
            f"{result.overlap_psnr:.0%}",
            f"{result.overlap_rate:.0%}",
        )
        out.print(table)
        out.print("Negative BD-rate: the test needs fewer bits than the anchor for equal PSNR.")

    guarded(body)


@app.command("baselines")
def baselines_command(
    video: VideoOption = None,
    start: StartOption = 0,
    frames: FramesOption = None,
    size: SizeOption = None,
    fps: FpsOption = None,
    convert: ConvertOption = False,
    encoders: Annotated[
        str | None,
        typer.Option("--encoders", help="Comma list, e.g. x264,vvenc (default: whole ladder)."),
    ] = None,
    vmaf: VmafOption = False,
    ladder_file: Annotated[
        Path | None,
        typer.Option(
            "--ladder",
            help="Ladder TOML file \\[env AICODEC_LADDER_FILE; default baselines/ladder.toml].",
        ),
    ] = None,
    jobs: JobsOption = None,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Encode a clip with the standard encoders at matched quality and print their RD curves."""

    def body() -> None:
        from aicodec.ladder import load_ladder, run_ladder
        from aicodec.store import Store

        settings = make_settings(
            db=db, ladder_file=ladder_file, jobs=jobs, executor=executor, ray_address=ray_address
        )
        ladder = load_ladder(settings.ladder_file)
        names = [name.strip() for name in encoders.split(",") if name.strip()] if encoders else None
        ladder.select(names)  # fail on an unknown name before any work
        clip = load_window(
            settings, video, start=start, count=frames, size=size, fps=fps, convert=convert
        )
        with _executor(settings):
            store = Store(settings.db)
            try:
                result = _run_with_progress(
                    lambda progress: run_ladder(
                        clip,
                        store,
                        settings,
                        ladder,
                        encoders=names,
                        with_vmaf=vmaf,
                        progress=progress,
                    )
                )
            finally:
                store.close()
        for curve in result.encoders.values():
            for warning in curve.warnings:
                err.print(
                    f"[yellow]warning:[/yellow] {curve.name}: {shown(warning)}", soft_wrap=True
                )
        if as_json:
            print_json(result.to_dict())
            return
        _render_ladder(result, vmaf)

    guarded(body)


def _run_with_progress(work: Callable[[Callable[[Any], None]], T]) -> T:
    """Run ladder work under a Rich progress bar fed by its progress events."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} encoders"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=None)

        def on_event(event: Any) -> None:
            state = "cached" if event.cached else "encoding"
            rate = "" if event.rate_value is None else f" {event.rate_option} {event.rate_value}"
            bar.update(
                task,
                total=event.encoder_total,
                completed=event.encoder_index + (1 if event.finished else 0),
                description=f"{event.encoder}{rate} ({'done' if event.finished else state})",
            )

        return work(on_event)


def _render_ladder(result: Any, with_vmaf: bool) -> None:
    """Print the RD points of every encoder and their BD-rates against the anchor."""
    clip = result.clip.frames
    title = (
        f"{result.clip.name}: {clip.width}x{clip.height}, {clip.count} frames at "
        f"{float(clip.fps):.3f} fps ({result.fresh_encodes} encoded, "
        f"{result.cached_encodes} from the store)"
    )
    table = Table(title=title)
    columns = ["encoder", "rate", "kbps", "PSNR-Y", "PSNR-YUV", "SSIM-Y"]
    columns += ["VMAF"] if with_vmaf else []
    columns += ["enc fps"]
    for column in columns:
        table.add_column(column, justify="left" if column == "encoder" else "right")
    for curve in result.encoders.values():
        for index, point in enumerate(curve.points):
            cells = [
                curve.name if index == 0 else "",
                f"{curve.rate_option} {point.rate_value}",
                fmt(point.kbps, 1),
                fmt(point.psnr_y, 2),
                fmt(point.psnr_yuv, 2),
                fmt(point.ssim_y, 4),
            ]
            cells += [fmt(point.vmaf, 2)] if with_vmaf else []
            cells += [fmt(point.encode_fps, 1)]
            table.add_row(*cells, end_section=index == len(curve.points) - 1)
    out.print(table)
    summary = Table(title=f"BD-rate against {result.anchor} (PSNR-Y, pchip)")
    summary.add_column("encoder")
    summary.add_column(f"BD-rate vs {result.anchor}", justify="right")
    for curve in result.encoders.values():
        value = curve.bd_rate_vs.get(result.anchor)
        summary.add_row(curve.name, "undefined" if value is None else f"{value:+.2f} %")
    out.print(summary)
    out.print(
        "kbps counts the raw elementary stream (no container, encoder-banner SEI removed); "
        "PSNR in dB; BD-rate < 0 means fewer bits than the anchor at equal PSNR-Y."
    )


CodecArgument = Annotated[Path, typer.Argument(help="The codec file (Python, in the contract).")]
QualitiesOption = Annotated[
    str | None,
    typer.Option("--qualities", help="Comma list of qualities 0-100 \\[default 20,40,60,80]."),
]
KeepOption = Annotated[
    Path | None,
    typer.Option("--keep", help="Write DIR/q{quality}.bin and DIR/q{quality}.y4m per point."),
]


def load_window(settings: Settings, video: Path | str | None, **window: Any) -> Any:
    """The clip chosen by the shared clip options."""
    from aicodec.clips import load_clip

    return load_clip(video, settings, **window)


@app.command("contract")
def contract_command(as_json: JsonOption = False) -> None:
    """Print the codec contract (markdown) exactly as every prompt carries it."""

    def body() -> None:
        from aicodec.generation.prompts import contract_text

        text = contract_text(make_settings())
        if as_json:
            print_json({"contract": text})
        else:
            print(text)

    guarded(body)


@app.command("validate")
def validate_command(codec: CodecArgument, as_json: JsonOption = False) -> None:
    """Check a codec file statically (contract, imports, forbidden names); exit 1 if invalid."""

    def body() -> None:
        from aicodec.validation import validate_file

        report = validate_file(codec)
        if as_json:
            print_json(report.to_dict())
        elif report.valid:
            out.print(f"[green]valid[/green] {shown(codec)} (code hash {report.code_hash[:16]})")
        else:
            table = Table(title=f"{shown(codec)}: {len(report.violations)} problem(s)")
            for column in ("line", "rule", "problem"):
                table.add_column(column)
            for violation in report.violations:
                table.add_row(str(violation.line), violation.rule, shown(violation.message))
            out.print(table)
        if not report.valid:
            raise typer.Exit(1)

    guarded(body)


def _with_store(
    db: str | None,
    work: Callable[[Any, Settings], T],
    *,
    runs_jobs: bool = False,
    read_only: bool = False,
    **overrides: Any,
) -> T:
    """Open the store named by ``--db`` (or the settings), run ``work``, close it; with
    ``runs_jobs`` the executor is made ready first; ``read_only`` neither migrates nor writes."""
    from aicodec.store import Store

    settings = make_settings(db=db, **overrides)
    with _executor(settings) if runs_jobs else nullcontext():
        store = Store(settings.db, read_only=read_only)
        try:
            return work(store, settings)
        finally:
            store.close()


@contextmanager
def _executor(settings: Settings) -> Iterator[None]:
    """With ``--executor ray``: connect before any work (an unreachable cluster is one
    line), and afterwards say how many jobs were sent again because a worker died."""
    if settings.executor == "local":
        yield
        return
    from aicodec.pools.local import retried_jobs, start_executor

    err.print(f"executor: {shown(start_executor(settings))}", soft_wrap=True)
    try:
        yield
    finally:
        retried = retried_jobs(settings)
        if retried:
            err.print(
                f"[yellow]ray:[/yellow] {retried} job(s) sent again after the worker "
                "running them died",
                soft_wrap=True,
            )


def _status(message: str) -> Any:
    """A transient Rich status line on stderr for long candidate runs."""
    return err.status(message, spinner="dots")


@app.command("run")
def run_command(
    codec: CodecArgument,
    video: VideoOption = None,
    start: StartOption = 0,
    frames: FramesOption = None,
    size: SizeOption = None,
    fps: FpsOption = None,
    convert: ConvertOption = False,
    qualities: QualitiesOption = None,
    keep: KeepOption = None,
    device: DeviceOption = None,
    jobs: JobsOption = None,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a codec in the sandbox: encode per quality, decode each bitstream twice apart."""

    def body() -> None:
        from aicodec.candidates import read_candidate
        from aicodec.scoring.candidate import parse_qualities, run_and_measure

        source = read_candidate(codec)
        levels = parse_qualities(qualities)

        def work(store: Any, settings: Settings) -> Any:
            clip = load_window(
                settings, video, start=start, count=frames, size=size, fps=fps, convert=convert
            )
            with _status(f"running {shown(codec.name)} on {shown(clip.name)}") as status:
                return run_and_measure(
                    source,
                    codec.name,
                    clip,
                    store,
                    settings,
                    levels,
                    keep_dir=keep,
                    reuse=False,
                    progress=lambda text: status.update(shown(f"{codec.name}: {text}")),
                )

        outcome = _with_store(
            db,
            work,
            runs_jobs=True,
            device=device,
            jobs=jobs,
            executor=executor,
            ray_address=ray_address,
        )
        if as_json:
            print_json(outcome.to_dict())
            return
        _render_points(outcome, with_vmaf=False, title="sandbox run")

    guarded(body)


@app.command("score")
def score_command(
    codec: CodecArgument,
    video: VideoOption = None,
    start: StartOption = 0,
    frames: FramesOption = None,
    size: SizeOption = None,
    fps: FpsOption = None,
    convert: ConvertOption = False,
    qualities: QualitiesOption = None,
    keep: KeepOption = None,
    vmaf: VmafOption = False,
    encoders: Annotated[
        str | None,
        typer.Option("--encoders", help="Ladder encoders to compare with (default: all)."),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Also draw the RD chart (PSNR-Y against log rate, the codec "
            "and the encoders) to this .svg or .png file.",
        ),
    ] = None,
    device: DeviceOption = None,
    jobs: JobsOption = None,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score a codec: RD points measured by the lab and BD-rate against every encoder."""

    def body() -> None:
        from aicodec.candidates import read_candidate
        from aicodec.ladder import load_ladder
        from aicodec.scoring.candidate import parse_qualities, score_candidate

        source = read_candidate(codec)
        levels = parse_qualities(qualities)
        names = [name.strip() for name in encoders.split(",")] if encoders else None
        if plot is not None:
            from aicodec.report.charts import plot_format

            plot_format(plot)

        def work(store: Any, settings: Settings) -> Any:
            ladder = load_ladder(settings.ladder_file)
            ladder.select(names)
            clip = load_window(
                settings, video, start=start, count=frames, size=size, fps=fps, convert=convert
            )
            with _status(f"scoring {shown(codec.name)} on {shown(clip.name)}") as status:
                scored = score_candidate(
                    source,
                    codec.name,
                    clip,
                    store,
                    settings,
                    ladder,
                    levels,
                    encoders=names,
                    keep_dir=keep,
                    with_vmaf=vmaf,
                    progress=lambda text: status.update(shown(f"{codec.name}: {text}")),
                )
            if plot is not None:
                from aicodec.report.score_plot import write_score_plot

                write_score_plot(store, settings, scored, plot)
            return scored

        outcome = _with_store(
            db,
            work,
            runs_jobs=True,
            device=device,
            jobs=jobs,
            executor=executor,
            ray_address=ray_address,
        )
        for warning in outcome.warnings:
            err.print(f"[yellow]warning:[/yellow] {shown(warning)}", soft_wrap=True)
        if as_json:
            print_json({**outcome.to_dict(), **({"plot": str(plot)} if plot else {})})
            return
        _render_points(outcome, with_vmaf=vmaf, title="score")
        summary = Table(title="BD-rate of the codec against each encoder (PSNR-Y)")
        summary.add_column("encoder")
        summary.add_column("BD-rate", justify="right")
        for name, value in outcome.bd_rate_vs.items():
            summary.add_row(name, "undefined" if value is None else f"{value:+.2f} %")
        out.print(summary)
        out.print("BD-rate < 0: the codec needs fewer bits than that encoder at equal PSNR-Y.")
        if plot is not None:
            out.print(f"RD chart: {shown(str(plot))}", soft_wrap=True)

    guarded(body)


def _render_points(outcome: Any, *, with_vmaf: bool, title: str) -> None:
    """Print a candidate's measured rate points and the isolation in force."""
    clip = outcome.clip.frames
    reused = " (stored run reused)" if outcome.reused else ""
    table = Table(
        title=f"{title} of {shown(outcome.name)} on {shown(outcome.clip.name)}: "
        f"{clip.width}x{clip.height}, {clip.count} frames{reused}"
    )
    columns = ["quality", "bytes", "kbps", "PSNR-Y", "PSNR-YUV", "SSIM-Y"]
    columns += ["VMAF"] if with_vmaf else []
    columns += ["enc fps", "dec fps"]
    for column in columns:
        table.add_column(column, justify="right")
    for point in outcome.points:
        cells = [
            str(point.quality),
            str(point.bytes),
            fmt(point.kbps, 1),
            fmt(point.psnr_y),
            fmt(point.psnr_yuv),
            fmt(point.ssim_y, 4),
        ]
        cells += [fmt(point.vmaf)] if with_vmaf else []
        cells += [fmt(point.encode_fps, 1), fmt(point.decode_fps, 1)]
        table.add_row(*cells)
    out.print(table)
    out.print(f"isolation: {shown(outcome.isolation)}")
    out.print(
        "bytes = the whole bitstream the decoder received; kbps = 8*bytes/(frames/fps)/1000; "
        "every bitstream was decoded twice in separate processes with identical results."
    )


@app.command("decode")
def decode_command(
    codec: CodecArgument,
    bitstream: Annotated[Path, typer.Argument(help="A bitstream the codec's encoder wrote.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The decoded .y4m to write.")],
    fps: Annotated[
        str | None, typer.Option("--fps", help="Frame rate when the codec does not return one.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Decode one bitstream with one codec in the sandbox, to a y4m file."""

    def body() -> None:
        from aicodec.candidates import read_candidate
        from aicodec.clips import parse_fps
        from aicodec.errors import ClipError
        from aicodec.sandbox.execute import decode_bitstream
        from aicodec.scoring.candidate import validate_or_raise

        source = read_candidate(codec)
        validate_or_raise(source)
        try:
            data = bitstream.read_bytes()
        except OSError as exc:
            raise ClipError(f"{bitstream}: cannot read the bitstream ({exc.strerror})") from None
        settings = make_settings()
        rate = parse_fps(fps) if fps is not None else None
        with _status(f"decoding {shown(bitstream.name)} with {shown(codec.name)}"):
            frames, report = decode_bitstream(source, data, settings, fps=rate)
        frames.write_y4m(output)
        info = {
            "output": str(output),
            "frames": frames.count,
            "width": frames.width,
            "height": frames.height,
            "fps": float(frames.fps),
            "bytes": len(data),
            "decode_seconds": report.call_seconds,
            "isolation": list(report.isolation),
        }
        if as_json:
            print_json(info)
            return
        out.print(
            f"wrote {output}: {frames.count} frames of {frames.width}x{frames.height} at "
            f"{float(frames.fps):.3f} fps from {len(data)} bytes"
        )

    guarded(body)


@app.command("generate")
def generate_command(
    parent: Annotated[
        str | None,
        typer.Option(
            "--parent",
            help="Candidate id or codec file (default: best so far, else the hybrid seed).",
        ),
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option(
            "--provider",
            help="anthropic, openai, mutation or replay (default: "
            "anthropic when ANTHROPIC_API_KEY is set, else mutation).",
        ),
    ] = None,
    n: Annotated[int, typer.Option("--n", help="How many candidates to make.")] = 1,
    repairs: Annotated[
        int, typer.Option("--repairs", help="Times to ask the model to fix a validation error.")
    ] = 2,
    max_cost: Annotated[
        float | None, typer.Option("--max-cost", help="Stop once this many USD are spent.")
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", help="Stop once this many tokens are used.")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Model name (Claude, or the openai server's).")
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="OpenAI-compatible server, e.g. "
            "http://127.0.0.1:8000/v1 (implies --provider openai).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the mutation provider.")] = 0,
    prices: PricesOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make new candidates from a parent with a model (or the offline mutation search)."""

    def body() -> None:
        from aicodec.generation.generate import (
            GenerationRequest,
            generate_candidates,
            resolve_parent,
            select_provider,
        )

        def work(store: Any, settings: Settings) -> Any:
            chosen, reason = select_provider(settings, provider, seed=seed, store=store)
            origin = resolve_parent(store, parent)
            with _status(f"generating from {shown(origin.name)}") as status:
                request = GenerationRequest(
                    count=n, repairs=repairs, max_cost=max_cost, max_tokens=max_tokens
                )
                return generate_candidates(
                    store,
                    settings,
                    chosen,
                    reason,
                    origin,
                    request,
                    progress=lambda text: status.update(shown(text)),
                )

        overrides: dict[str, Any] = {"prices_file": prices}
        if base_url:
            overrides.update(openai_base_url=base_url, provider=provider or "openai")
            if model:
                overrides["openai_model"] = model
        elif model:
            overrides["model"] = model
        outcome = _with_store(db, work, **overrides)
        err.print(f"provider: {shown(outcome.provider)} ({shown(outcome.provider_reason)})")
        if outcome.stopped:
            err.print(f"[yellow]stopped:[/yellow] {shown(outcome.stopped)}", soft_wrap=True)
        if as_json:
            print_json(outcome.to_dict())
        else:
            _render_generation(outcome)
        if not any(candidate.status == "new" for candidate in outcome.candidates):
            raise typer.Exit(1)

    guarded(body)


def _render_generation(outcome: Any) -> None:
    """Print each generated candidate's id, validity and fate."""
    table = Table(
        title=f"{len(outcome.candidates)} candidate(s) from {shown(outcome.parent.name)} by "
        f"{shown(outcome.provider)} ({shown(outcome.model)})"
    )
    for column in ("id", "status", "valid", "origin", "code hash", "repairs", "reason"):
        table.add_column(column)
    for item in outcome.candidates:
        table.add_row(
            str(item.candidate_id or "-"),
            item.status,
            "yes" if item.valid else "no",
            shown(item.origin),
            (item.code_hash or "-")[:12],
            str(item.repairs),
            shown(item.reason or ""),
        )
    out.print(table)
    out.print(
        f"{outcome.calls} model call(s), {outcome.input_tokens} input and "
        f"{outcome.output_tokens} output tokens, {outcome.cost_usd:.4f} USD"
    )


@app.command("logs")
def logs_command(
    last: Annotated[int, typer.Option("-n", "--last", help="How many calls to list.")] = 20,
    query: Annotated[
        str | None,
        typer.Option(
            "-q", "--query", help="Only calls whose prompt, answer or error contains TEXT."
        ),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List and search the model-call log, with token and cost totals per run."""

    def body() -> None:
        from sqlalchemy import or_, select

        from aicodec.generation.generate import call_totals
        from aicodec.store import ModelCall

        def work(store: Any, settings: Settings) -> Any:
            statement = select(ModelCall).order_by(ModelCall.id.desc()).limit(max(last, 0))
            if query:
                pattern = f"%{query}%"
                statement = statement.where(
                    or_(
                        ModelCall.messages_json.like(pattern),
                        ModelCall.response_text.like(pattern),
                        ModelCall.error.like(pattern),
                    )
                )
            with store.session() as session:
                calls = [_call_dict(call) for call in session.scalars(statement)]
            return calls, call_totals(store)

        calls, totals = _with_store(db, work)
        if as_json:
            print_json({"calls": calls, "runs": [_jsonable(total) for total in totals]})
            return
        table = Table(title=f"model calls ({len(calls)} shown, newest first)")
        for column in (
            "id",
            "when",
            "provider",
            "model",
            "purpose",
            "in",
            "out",
            "cached",
            "USD",
            "s",
            "retries",
            "error",
        ):
            table.add_column(column)
        for call in calls:
            table.add_row(
                str(call["id"]),
                str(call["created_at"])[:19],
                shown(call["provider"]),
                shown(call["model"]),
                shown(call["purpose"]),
                str(call["input_tokens"]),
                str(call["output_tokens"]),
                str(call["cache_read_tokens"]),
                f"{call['cost_usd']:.4f}",
                f"{call['latency_s']:.1f}",
                str(call["retries"]),
                shown(call["error"] or ""),
            )
        out.print(table)
        runs = Table(title="totals per run")
        for column in ("run", "calls", "input", "output", "cached", "USD"):
            runs.add_column(column)
        for total in totals:
            runs.add_row(
                str(total["batch"])[:12],
                str(total["calls"]),
                str(total["input_tokens"]),
                str(total["output_tokens"]),
                str(total["cache_read_tokens"]),
                f"{total['cost_usd'] or 0:.4f}",
            )
        out.print(runs)

    guarded(body)


def _call_dict(call: Any) -> dict[str, Any]:
    """A logged model call as plain values."""
    names = (
        "id",
        "batch",
        "provider",
        "model",
        "purpose",
        "prompt_hash",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "cost_usd",
        "latency_s",
        "retries",
        "error",
        "created_at",
        "response_text",
        "system_prompt",
        "messages_json",
    )
    return _jsonable({name: getattr(call, name) for name in names})


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """Datetimes as ISO text."""
    return {
        key: value.isoformat() if hasattr(value, "isoformat") else value
        for key, value in row.items()
    }


@app.command("adopt")
def adopt_command(
    candidate: Annotated[int, typer.Argument(help="The candidate's id in the store.")],
    video: Annotated[
        list[Path] | None,
        typer.Option(
            "--video",
            help="An evaluation clip, file or builtin:NAME (repeatable); default: the held-out "
            "built-in clips, builtin:still and builtin:shake.",
        ),
    ] = None,
    start: StartOption = 0,
    frames: FramesOption = None,
    qualities: QualitiesOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Adopt even when the policy says no (recorded).")
    ] = False,
    git_repo: Annotated[
        Path | None,
        typer.Option(
            "--git-repo",
            help="The codec repository (env AICODEC_CODEC_REPO; "
            "default ./codecs); created when absent or empty.",
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help="BD-rate (percent) by which the candidate must beat the best (default 1).",
        ),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Adopt a candidate as the best codec when it beats the current best; commit and tag it."""

    def body() -> None:
        from aicodec.adoption import adopt, adopted_decision, candidate_source, check_codec_repo
        from aicodec.clips import HELD_OUT_BUILTINS
        from aicodec.errors import SandboxError, ValidationError
        from aicodec.ladder import load_ladder
        from aicodec.ladder.runner import record_clip
        from aicodec.scoring.candidate import parse_qualities, run_and_measure, score_candidate
        from aicodec.store.queries.points import current_best

        levels = parse_qualities(qualities)
        if len(levels) < 4:
            raise ConfigError("--qualities needs at least 4 values: BD-rate needs 4 rate points")
        names = ["x264", "x265", "vvenc"]

        def work(store: Any, settings: Settings) -> Any:
            repo = git_repo if git_repo is not None else settings.codec_repo
            source, name = candidate_source(store, candidate)
            clips = [
                load_window(settings, path, start=start, count=frames)
                for path in (video or HELD_OUT_BUILTINS)
            ]
            clip_ids = [record_clip(store, clip) for clip in clips]
            if adopted_decision(store, candidate) is not None:
                return adopt(store, settings, candidate, clip_ids, levels, repo_path=repo)
            check_codec_repo(repo)
            ladder = load_ladder(settings.ladder_file)
            ladder.select(names)
            best = current_best(store)
            rival = candidate_source(store, best) if best not in (None, candidate) else None
            for clip in clips:
                with _status(f"scoring candidate {candidate} on {shown(clip.name)}") as status:
                    try:
                        score_candidate(
                            source,
                            name,
                            clip,
                            store,
                            settings,
                            ladder,
                            levels,
                            encoders=names,
                            progress=lambda text: status.update(shown(f"{name}: {text}")),
                        )
                    except (SandboxError, ValidationError) as exc:
                        err.print(f"[yellow]warning:[/yellow] {shown(str(exc))}", soft_wrap=True)
                    if rival is None:
                        continue
                    try:
                        run_and_measure(
                            rival[0],
                            rival[1],
                            clip,
                            store,
                            settings,
                            levels,
                            progress=lambda text: status.update(shown(f"best {rival[1]}: {text}")),
                        )
                    except (SandboxError, ValidationError) as exc:
                        err.print(f"[yellow]warning:[/yellow] {shown(str(exc))}", soft_wrap=True)
            return adopt(store, settings, candidate, clip_ids, levels, force=force, repo_path=repo)

        decision = _with_store(db, work, adopt_threshold_percent=threshold)
        if as_json:
            print_json(decision.to_dict())
        elif decision.adopted:
            forced = " [yellow](forced)[/yellow]" if decision.forced else ""
            out.print(
                f"[green]adopted[/green]{forced} candidate {decision.candidate_id} as "
                f"{decision.tag} (commit {decision.commit})",
                soft_wrap=True,
            )
            out.print(shown(decision.reason), soft_wrap=True)
        else:
            out.print(f"[yellow]not adopted[/yellow]: candidate {decision.candidate_id}")
            out.print(shown(decision.reason), soft_wrap=True)
        if not decision.adopted:
            raise typer.Exit(1)

    guarded(body)


@app.command("evolve")
def evolve_command(
    iterations: Annotated[int, typer.Option("--iterations", "-n", help="Iterations to run.")] = 20,
    provider: Annotated[
        str | None,
        typer.Option(
            "--provider",
            help="anthropic, openai, mutation or replay (default: "
            "anthropic when ANTHROPIC_API_KEY is set, else mutation).",
        ),
    ] = None,
    video: Annotated[
        list[Path] | None,
        typer.Option(
            "--video",
            help="A training clip, file or builtin:NAME (repeatable); default: builtin:default.",
        ),
    ] = None,
    holdout: Annotated[
        list[Path] | None,
        typer.Option(
            "--holdout",
            help="A holdout clip (repeatable): never shown to the model; adoption is decided "
            "on it. Default: builtin:still and builtin:shake (less any training clip); "
            "none: no holdout clip, adoption on the training clips.",
        ),
    ] = None,
    start: StartOption = 0,
    frames: FramesOption = None,
    fps: FpsOption = None,
    qualities: QualitiesOption = None,
    encoders: Annotated[
        str | None,
        typer.Option(
            "--encoders",
            help="Ladder encoders to score against "
            "\\[env AICODEC_EVOLVE_ENCODERS; default x264,x265,vvenc].",
        ),
    ] = None,
    parent: Annotated[
        str | None,
        typer.Option(
            "--parent",
            help="Starting codec: candidate id or file (default: the "
            "adopted best, else the best scored, else the hybrid seed).",
        ),
    ] = None,
    max_cost: Annotated[
        float | None, typer.Option("--max-cost", help="Stop once the run has spent this many USD.")
    ] = None,
    max_minutes: Annotated[
        float | None,
        typer.Option("--max-minutes", help="Stop once the run has worked this many minutes."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of parent choice and mutation.")] = 0,
    parallel: Annotated[
        int | None,
        typer.Option(
            "--parallel",
            help="Iterations in flight: the next are generated while one is scored "
            "\\[env AICODEC_EVOLVE_PARALLEL; default 1].",
        ),
    ] = None,
    git_repo: Annotated[
        Path | None,
        typer.Option(
            "--git-repo",
            help="Codec repository for adoptions \\[env AICODEC_CODEC_REPO; default ./codecs].",
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help="BD-rate (percent) a codec must beat the best by to be adopted (default 1).",
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Model name (Claude, or the openai server's).")
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="OpenAI-compatible server (implies --provider openai)."),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue the last unfinished run to its planned count."),
    ] = False,
    allow_process_sandbox: Annotated[
        bool,
        typer.Option(
            "--allow-process-sandbox",
            help="Run code a model writes even where kernel isolation (namespaces, seccomp) "
            "is unavailable, with process isolation only.",
        ),
    ] = False,
    jobs: JobsOption = None,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
    prices: PricesOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The main job: evolve codecs (plan, parent, generate, score, adopt) for N iterations."""

    def body() -> None:
        from aicodec.clips import BUILTIN_NAME
        from aicodec.evolution import (
            ClipSpec,
            EvolveConfig,
            EvolveInterrupted,
            holdout_sources,
            resume_evolution,
            start_evolution,
        )
        from aicodec.evolution.loop import EvolveCrashed
        from aicodec.scoring.candidate import parse_qualities

        given = {
            "--video": video,
            "--holdout": holdout,
            "--parent": parent,
            "--qualities": qualities,
            "--encoders": encoders,
            "--provider": provider,
            "--git-repo": git_repo,
            "--threshold": threshold,
            "--fps": fps,
            "--frames": frames,
            "--start": start or None,
            "--model": model,
            "--base-url": base_url,
            "--parallel": parallel,
        }
        overrides: dict[str, Any] = {"prices_file": prices}
        if allow_process_sandbox:
            overrides["sandbox_allow_process"] = True
        if base_url:
            overrides.update(openai_base_url=base_url, provider=provider or "openai")
            if model:
                overrides["openai_model"] = model
        elif model:
            overrides["model"] = model

        def work(store: Any, settings: Settings) -> Any:
            with _evolve_progress(iterations) as on_event:
                if resume:
                    clash = [
                        name
                        for name, value in given.items()
                        if value not in (None, []) and name not in SWITCHABLE
                    ]
                    if clash:
                        raise ConfigError(
                            f"--resume continues a run with its own settings; drop {clash[0]}"
                        )
                    return resume_evolution(
                        store, settings, on_event, max_cost=max_cost, max_minutes=max_minutes
                    )
                training = [str(path) for path in video or []] or [BUILTIN_NAME]
                held = holdout_sources(training, [str(path) for path in holdout or []])
                specs = [ClipSpec(source, start, frames, None, fps) for source in training]
                held_specs = [ClipSpec(source, start, frames, None, fps) for source in held]
                config = EvolveConfig.from_settings(
                    settings,
                    iterations=iterations,
                    videos=specs,
                    holdout=held_specs,
                    qualities=parse_qualities(qualities),
                    encoders=[name.strip() for name in (encoders or "").split(",") if name.strip()]
                    or None,
                    seed=seed,
                    parent=parent,
                    max_cost=max_cost,
                    max_minutes=max_minutes,
                    git_repo=git_repo and str(git_repo.resolve()),
                    parallel=parallel,
                )
                return start_evolution(store, settings, config, on_event)

        def resume_command() -> str:
            """The command that resumes this run, with the options it was given that the run
            does not store (its store, executor, model address, prices, sandbox opt-in)."""
            words = ["aicodec", "evolve", "--resume"]
            for option, value in (
                ("--db", db),
                ("--executor", executor),
                ("--ray-address", ray_address),
                ("--model", model),
                ("--base-url", base_url),
                ("--prices", prices),
            ):
                if value is not None:
                    words += [option, str(value)]
            if allow_process_sandbox:
                words.append("--allow-process-sandbox")
            return shlex.join(words)

        if provider:
            overrides.setdefault("provider", provider)
        try:
            summary = _with_store(
                db,
                work,
                runs_jobs=True,
                adopt_threshold_percent=threshold,
                jobs=jobs,
                executor=executor,
                ray_address=ray_address,
                **overrides,
            )
        except EvolveInterrupted as exc:
            err.print(
                f"[yellow]{shown(str(exc))}[/yellow]; completed iterations are stored. "
                f"Resume with: {shown(resume_command())}",
                soft_wrap=True,
            )
            raise typer.Exit(130) from None
        except EvolveCrashed as exc:
            if os.environ.get("AICODEC_DEBUG"):
                raise exc.error from exc
            err.print(
                f"[red]internal error:[/red] {shown(str(exc))} (set AICODEC_DEBUG=1 to "
                "see the traceback); finished work is stored and the run is resumable. "
                f"Resume with: {shown(resume_command())}",
                soft_wrap=True,
            )
            raise typer.Exit(70) from None
        if as_json:
            print_json(summary.to_dict())
        else:
            _render_summary(summary)
        if summary.status == "failed":  # stopped by failures in a row: a failure for scripts
            raise typer.Exit(1)

    guarded(body)


SWITCHABLE = ("--model", "--base-url")  # options --resume may change (the model's address;
# --max-cost, --max-minutes and --prices are not in ``given``: --resume takes them too)


class _EvolveDisplay:
    """Rich progress for evolve: a bar over iterations, the stage, best BD-rate, cost."""

    def __init__(self, total: int) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        )
        self.task = self.progress.add_task("evolve", total=total, status="")
        self.started = False

    def __call__(self, event: Any) -> None:
        if not self.started:  # shown from the first event: a refused start stays one line
            self.progress.start()
            self.started = True
        best = "-" if event.best_bd_rate is None else f"{event.best_bd_rate:+.2f} %"
        status = (
            f"best vs x264 {best} | adopted {event.adoptions} | "
            f"${event.cost_usd:.3f} | {shown(event.message, 60)}"
        )
        self.progress.update(
            self.task,
            total=event.total,
            description=f"iteration {event.iteration} {event.stage}",
            status=status,
        )
        if event.row is not None:
            self.progress.update(self.task, advance=1)
            self.progress.console.print(_iteration_line(event.row), soft_wrap=True)


def _iteration_line(row: dict[str, Any]) -> str:
    """One finished iteration as a line: outcome, BD-rates, adoption, time per stage."""
    seconds = ", ".join(f"{stage} {value:.1f}s" for stage, value in row["stage_seconds"].items())
    if row["status"] == "scored":
        outcome = (
            f"candidate {row['candidate']} BD-rate vs parent "
            f"{fmt(row['bd_rate_vs_parent'])} %, "
            f"vs x264 {fmt(row['bd_rate'])} %"
        )
    else:
        outcome = f"[red]{row['status']}[/red] ({shown(row['failure_kind'])})"
    adopted = " [green]adopted[/green]" if row["adopted"] else ""
    return (
        f"#{row['iteration']} parent {row['parent']}: {outcome}{adopted}; "
        f"{shown(row['reason'] or '', 160)} [dim]({seconds})[/dim]"
    )


@contextmanager
def _evolve_progress(total: int) -> Iterator[Callable[[Any], None]]:
    """The evolve display's callback (SIGTERM and SIGHUP act as Ctrl-C: see main)."""
    display = _EvolveDisplay(total)
    try:
        yield display
    except BaseException:  # an error is one line: leave no progress bar above it
        display.progress.live.transient = True
        raise
    finally:
        if display.started:
            display.progress.stop()


def _stop_signal_to_interrupt(signum: int, frame: Any) -> None:
    """SIGTERM and SIGHUP end any command the way Ctrl-C does: sandbox children and their
    process trees are killed, work folders removed, the store left consistent (an evolve
    run resumable). Later ones are ignored, so the clean-up itself runs to its end."""
    for stop in STOP_SIGNALS:
        signal.signal(stop, signal.SIG_IGN)
    raise KeyboardInterrupt


def _clip_list(clips: list[dict[str, Any]]) -> str:
    """Clips on one line: name, store id and the start of the content hash of each."""
    return ", ".join(
        f"{clip['name']} (clip {clip['id']}, {(clip['hash'] or '-')[:12]})" for clip in clips
    )


def _render_summary(summary: Any) -> None:
    """The end-of-run summary: counts, failures by kind, adoptions, best codec, cost."""
    table = Table(title=f"evolve run {summary.run_id}: {summary.status}")
    table.add_column("figure")
    table.add_column("value", overflow="fold")
    failures = ", ".join(f"{kind} {count}" for kind, count in summary.failures.items()) or "none"
    adoptions = (
        ", ".join(
            f"candidate {item['candidate']} (iteration {item['iteration']})"
            for item in summary.adoptions
        )
        or "none"
    )
    rows = [
        ("provider", summary.provider),
        ("training clips", _clip_list(summary.training_clips)),
        (
            "holdout clips",
            _clip_list(summary.holdout_clips)
            if summary.holdout_clips
            else "none: adoption is decided on the training clips",
        ),
        ("iterations", f"{summary.completed} of {summary.planned} done, {summary.scored} scored"),
        ("failures by kind", failures),
        ("adoptions", adoptions),
        (
            "starting codec",
            f"candidate {summary.start_candidate}, BD-rate vs x264 "
            f"{fmt(summary.start_bd_rate_vs_x264)} %",
        ),
        (
            "best codec",
            f"candidate {summary.best_candidate}, BD-rate vs x264 "
            f"{fmt(summary.best_bd_rate_vs_x264)} %, vs the start "
            f"{fmt(summary.best_vs_start)} %",
        ),
        (
            "adopted best",
            "none"
            if summary.adopted_best is None
            else f"candidate {summary.adopted_best}, "
            f"vs the start {fmt(summary.adopted_vs_start)} %",
        ),
        ("model cost", f"{summary.cost_usd:.4f} USD"),
        ("time in iterations", f"{summary.seconds / 60:.1f} min"),
    ]
    if summary.stop_reason:
        rows.append(("stopped", summary.stop_reason))
    for name, value in rows:
        table.add_row(name, shown(str(value)))
    out.print(table)
    out.print("BD-rates: PSNR-Y, pchip, mean over the training clips; negative = fewer bits.")


RunOption = Annotated[
    int | None, typer.Option("--run", help="The evolve run's id (default: the last run).")
]


@app.command("history")
def history_command(
    run: RunOption = None,
    plans: Annotated[
        bool, typer.Option("--plans", help="Show plans, predictions and stage times too.")
    ] = False,
    calibration: Annotated[
        bool,
        typer.Option(
            "--calibration",
            help="Per planner: predicted against measured BD-rate vs the parent (error, "
            "correlation, predicted wins that came true) instead of the iterations.",
        ),
    ] = False,
    all_runs: Annotated[
        bool, typer.Option("--all-runs", help="With --calibration: pool every run in the store.")
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """The iterations of an evolve run: parent, origin, status, BD-rate, adoption, reason.

    With --calibration, how well its planners predicted the BD-rate vs the parent."""

    def body() -> None:
        if all_runs and not calibration:
            raise ConfigError("--all-runs goes with --calibration")
        if calibration:
            _history_calibration(db, run, all_runs, as_json)
            return
        from aicodec.evolution import history, run_clips

        entries, clips = _with_store(
            db, lambda store, settings: (history(store, run), run_clips(store, run))
        )
        keys = ("iteration", "parent", "origin", "status", "bd_rate", "adopted", "reason")
        if as_json:
            print_json(
                [{**entry, "clips": clips} for entry in entries]
                if plans
                else [{key: entry[key] for key in keys} for entry in entries]
            )
            return
        out.print(f"training clips: {shown(_clip_list(clips['training']))}", soft_wrap=True)
        out.print(f"holdout clips: {shown(_clip_list(clips['holdout']) or 'none')}", soft_wrap=True)
        table = Table(title="evolve history (BD-rate: mean vs x264 on the training clips, %)")
        columns = [
            "#",
            "parent",
            "candidate",
            "origin",
            "status",
            "BD-rate",
            "vs parent",
            "adopted",
            "reason",
        ]
        if plans:
            columns += ["predicted", "confidence", "planner", "hypothesis", "seconds"]
        for column in columns:
            table.add_column(column, overflow="fold")
        for entry in entries:
            cells = [
                str(entry["iteration"]),
                str(entry["parent"] or "-"),
                str(entry["candidate"] or "-"),
                shown(entry["origin"] or "-"),
                entry["status"] + (f" ({entry['failure_kind']})" if entry["failure_kind"] else ""),
                fmt(entry["bd_rate"]),
                fmt(entry["bd_rate_vs_parent"]),
                "yes" if entry["adopted"] else "no",
                shown(entry["reason"] or ""),
            ]
            if plans:
                seconds = sum(entry["stage_seconds"].values())
                cells += [
                    fmt(entry["predicted_bd_rate"]),
                    fmt(entry["confidence"]),
                    shown(entry["planner"] or "-"),
                    shown(entry["hypothesis"] or ""),
                    f"{seconds:.1f}",
                ]
            table.add_row(*cells)
        out.print(table)

    guarded(body)


def _hits(hits: int, total: int, share: float | None) -> str:
    """``hits/total`` with the share in percent where there is one."""
    return f"{hits}/{total}" + ("" if share is None else f" ({100 * share:.0f} %)")


def _history_calibration(db: str | None, run: int | None, all_runs: bool, as_json: bool) -> None:
    """``history --calibration``: a table per planner, or the figures as JSON."""
    if all_runs and run is not None:
        raise ConfigError("--all-runs pools every run; give it or --run, not both")
    from aicodec.evolution.calibration import planner_calibration

    result = _with_store(
        db, lambda store, settings: planner_calibration(store, run, all_runs=all_runs)
    )
    if as_json:
        print_json(result.to_dict())
        return
    runs = ", ".join(
        f"{pooled.run_id} ({pooled.pairs} pairs, threshold {pooled.threshold:g} %)"
        for pooled in result.runs
    )
    out.print(f"planner calibration over evolve run{'s' if len(result.runs) > 1 else ''} {runs}")
    for planner in result.planners:
        table = Table(title=f"planner: {shown(planner.planner)}", show_header=False)
        table.add_column("figure")
        table.add_column("value", justify="right")
        outcomes = planner.outcomes
        rows = [
            ("pairs (predicted and measured)", str(planner.pairs)),
            ("mean absolute error (points)", fmt(planner.mean_absolute_error)),
            ("mean signed error (points)", fmt(planner.mean_signed_error)),
            (
                "correlation (Pearson)",
                "n/a" if planner.correlation is None else fmt(planner.correlation, 3),
            ),
            (
                "predicted to beat the threshold, did",
                _hits(outcomes.came_true, outcomes.predicted_to_beat, outcomes.came_true_share),
            ),
            (
                "predicted not to, beat it anyway",
                _hits(
                    outcomes.beat_anyway, outcomes.predicted_not_to_beat, outcomes.beat_anyway_share
                ),
            ),
        ]
        for name, value in rows:
            table.add_row(name, value)
        out.print(table)
    out.print(
        "BD-rate vs the parent on the training clips, %; signed error = predicted - measured; "
        "beating the threshold = below -threshold."
    )


@app.command("report")
def report_command(
    run: RunOption = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="The HTML file to write.")] = Path(
        "report.html"
    ),
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """One self-contained HTML report of an evolve run; it works offline, the store is only read.

    RD curves per clip, BD-rate over iterations, lineage, planner calibration, failures, cost,
    time, and every candidate's code and diff."""

    def body() -> None:
        def work(store: Any, settings: Settings) -> Any:
            from aicodec.report import write_report  # after the store opened: bad input is quick

            with _status("building the report"):
                return write_report(store, settings, run, output), settings.report_max_bytes

        written, limit = _with_store(db, work, read_only=True)
        if written.bytes > limit:
            err.print(
                f"[yellow]warning:[/yellow] the report is over {limit / 1e6:g} MB, heavy to mail",
                soft_wrap=True,
            )
        if as_json:
            print_json(written.to_dict())
            return
        out.print(
            f"report of evolve run {written.run_id}: {shown(str(written.path))} "
            f"({written.bytes / 1e6:.2f} MB, built in {written.seconds:.1f} s)",
            soft_wrap=True,
        )

    guarded(body)


@app.command("serve")
def serve_command(
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            help="Port on 127.0.0.1 \\[env AICODEC_SERVE_PORT; default 8765; 0: any free port].",
        ),
    ] = None,
    refresh: Annotated[
        int | None,
        typer.Option(
            "--refresh",
            help="Seconds between reloads of a page while its run goes on \\[default 5].",
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Serve the store's runs, candidates and reports as live, read-only pages on 127.0.0.1.

    The pages follow evolve while it runs; Ctrl-C stops the server."""

    def body() -> None:
        def work(store: Any, settings: Settings) -> None:
            from aicodec.report import PageServer, list_runs
            from aicodec.store.db import shown_url

            list_runs(store)  # a store with no run yet is one line, not an empty site
            server = PageServer(
                store,
                settings,
                settings.serve_port,
                log=lambda line: err.print(shown(line), soft_wrap=True),
            )
            out.print(
                f"serving {server.url} (read-only pages of {shown(shown_url(store.url))}"
                "); Ctrl-C stops",
                soft_wrap=True,
            )
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                out.print("stopped")
            finally:
                server.server_close()

        _with_store(db, work, read_only=True, serve_port=port, serve_refresh_s=refresh)

    guarded(body)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class _ReaderMayLeave:
    """stdout or stderr of the console script, whose reader may leave early (``aicodec ... |
    head``): from the first write to the closed pipe on, the output goes to /dev/null, so the
    command ends as it would have, with its own exit status and no BrokenPipeError."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._reader_left()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._reader_left()

    def _reader_left(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())  # what is still buffered goes there too
        os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main() -> None:
    """Entry point of the ``aicodec`` console script."""
    for stop in STOP_SIGNALS:
        signal.signal(stop, _stop_signal_to_interrupt)
    sys.stdout = cast(TextIO, _ReaderMayLeave(sys.stdout))
    sys.stderr = cast(TextIO, _ReaderMayLeave(sys.stderr))
    app()
